//! A form as the pages draw it (`form.html`): labelled fields with hints, each refused field's
//! reason beside it, and what was typed kept when the form comes back refused.

use std::collections::HashMap;

use super::forms::{Errors, Fields};

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub id: String,
    pub label: String,
    pub hint: String,
    /// `text`, `number`, `date`, `datetime-local`, `email`, `select`, `checkbox`, `textarea`.
    pub input: &'static str,
    pub value: String,
    pub error: Option<String>,
    /// For a select: value and label.
    pub options: Vec<(String, String)>,
    /// A code field a scanner or the camera can fill.
    pub scan: bool,
    pub step: &'static str,
}

impl Field {
    pub fn checked(&self) -> bool {
        !self.value.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct FormView {
    pub id: String,
    pub title: String,
    pub action: String,
    pub submit: String,
    pub csrf: String,
    pub fields: Vec<Field>,
    /// Reasons the form has no field for.
    pub errors: Vec<String>,
    /// Shown open (it was refused, or the page was asked for it).
    pub open: bool,
}

impl FormView {
    pub fn new(id: &str, title: &str, action: String, submit: &str, csrf: &str) -> Self {
        Self {
            id: id.to_owned(),
            title: title.to_owned(),
            action,
            submit: submit.to_owned(),
            csrf: csrf.to_owned(),
            fields: Vec::new(),
            errors: Vec::new(),
            open: false,
        }
    }

    fn push(mut self, name: &str, label: &str, hint: &str, input: &'static str) -> Self {
        self.fields.push(Field {
            id: format!("{}-{}", self.id, name.replace('.', "-")),
            name: name.to_owned(),
            label: label.to_owned(),
            hint: hint.to_owned(),
            input,
            value: String::new(),
            error: None,
            options: Vec::new(),
            scan: false,
            step: "any",
        });
        self
    }

    pub fn text(self, name: &str, label: &str, hint: &str) -> Self {
        self.push(name, label, hint, "text")
    }

    pub fn email(self, name: &str, label: &str, hint: &str) -> Self {
        self.push(name, label, hint, "email")
    }

    pub fn textarea(self, name: &str, label: &str, hint: &str) -> Self {
        self.push(name, label, hint, "textarea")
    }

    pub fn number(self, name: &str, label: &str, hint: &str) -> Self {
        self.push(name, label, hint, "number")
    }

    pub fn whole(self, name: &str, label: &str, hint: &str) -> Self {
        let mut f = self.push(name, label, hint, "number");
        if let Some(last) = f.fields.last_mut() {
            last.step = "1";
        }
        f
    }

    pub fn date(self, name: &str, label: &str, hint: &str) -> Self {
        self.push(name, label, hint, "date")
    }

    pub fn time(self, name: &str, label: &str, hint: &str) -> Self {
        self.push(name, label, hint, "datetime-local")
    }

    pub fn tick(self, name: &str, label: &str, hint: &str) -> Self {
        self.push(name, label, hint, "checkbox")
    }

    pub fn scan(self, name: &str, label: &str, hint: &str) -> Self {
        let mut f = self.push(name, label, hint, "text");
        if let Some(last) = f.fields.last_mut() {
            last.scan = true;
        }
        f
    }

    pub fn select(
        self,
        name: &str,
        label: &str,
        hint: &str,
        options: Vec<(String, String)>,
    ) -> Self {
        let mut f = self.push(name, label, hint, "select");
        if let Some(last) = f.fields.last_mut() {
            if let Some((first, _)) = options.first() {
                last.value = first.clone();
            }
            last.options = options;
        }
        f
    }

    /// A starting value.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        if let Some(f) = self.fields.iter_mut().find(|f| f.name == name) {
            f.value = value.into();
        }
        self
    }

    pub fn opened(mut self) -> Self {
        self.open = true;
        self
    }

    /// The form as it was sent, with its reasons: every field keeps what was typed.
    pub fn refused(mut self, sent: &Fields, errors: &Errors) -> Self {
        let values: HashMap<String, String> = sent.values();
        for f in &mut self.fields {
            f.value = values.get(&f.name).cloned().unwrap_or_default();
            f.error = errors.of(&f.name).map(str::to_owned);
        }
        self.errors = errors.general.clone();
        self.open = true;
        self
    }
}
