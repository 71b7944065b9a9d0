//! Typesetting a report with typst as a library: one in-memory source, the fonts embedded in the
//! binary, no clock and no file access, so the same markup always gives the same bytes.

use std::sync::OnceLock;

use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Smart};
use typst::layout::PagedDocument;
use typst::syntax::{FileId, Source, VirtualPath};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};

use crate::error::{AppError, AppResult};

struct Fonts {
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

/// Parsed once per process: the fonts are large.
fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| {
        let fonts: Vec<Font> = typst_assets::fonts()
            .flat_map(|data| Font::iter(Bytes::new(data)))
            .collect();
        let book = FontBook::from_fonts(&fonts);
        Fonts {
            book: LazyHash::new(book),
            fonts,
        }
    })
}

struct ReportWorld {
    library: LazyHash<Library>,
    source: Source,
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.library
    }
    fn book(&self) -> &LazyHash<FontBook> {
        &fonts().book
    }
    fn main(&self) -> FileId {
        self.source.id()
    }
    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.source.id() {
            Ok(self.source.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }
    fn file(&self, _: FileId) -> FileResult<Bytes> {
        Err(FileError::AccessDenied)
    }
    fn font(&self, index: usize) -> Option<Font> {
        fonts().fonts.get(index).cloned()
    }
    fn today(&self, _: Option<i64>) -> Option<Datetime> {
        None
    }
}

/// Typesets `markup` (typst) into PDF bytes.
pub fn render(markup: String) -> AppResult<Vec<u8>> {
    let world = ReportWorld {
        library: LazyHash::new(Library::default()),
        source: Source::new(FileId::new(None, VirtualPath::new("report.typ")), markup),
    };
    let document: PagedDocument = typst::compile(&world).output.map_err(|errors| {
        AppError::internal(format!(
            "report: {}",
            errors
                .iter()
                .map(|e| e.message.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let options = typst_pdf::PdfOptions {
        ident: Smart::Custom("aseptic-audit-report"),
        timestamp: None,
        ..Default::default()
    };
    typst_pdf::pdf(&document, &options).map_err(|errors| {
        AppError::internal(format!(
            "report pdf: {}",
            errors
                .iter()
                .map(|e| e.message.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })
}

/// A typst string literal holding `text` exactly (as content it is never read as markup).
pub fn str_lit(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_markup_gives_the_same_bytes() {
        let markup = format!(
            "= Report\n#table(columns: 2, {}, {})\n",
            str_lit("a \"quoted\" #hash [x]"),
            str_lit("b\\c")
        );
        let a = render(markup.clone()).unwrap();
        let b = render(markup).unwrap();
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, b);
    }

    #[test]
    fn broken_markup_is_an_error_not_a_panic() {
        assert!(render("#table(".into()).is_err());
    }
}
