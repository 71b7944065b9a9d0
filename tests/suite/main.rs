//! The black-box suite in one test binary: the real application on a free port over a fresh
//! database, spoken to over HTTP (and the real `aseptic` binary for the CLI). One binary, not one
//! per file, so CI links the service and its PDF engine once instead of once per file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod audit;
mod auth;
mod bad_input;
mod browser;
mod cli;
mod closed_sets;
mod compliance;
mod crash;
mod credentials;
mod demo;
mod exports;
mod faults;
mod http;
mod imports;
mod incidents;
mod inspectors;
mod instances;
mod isolation;
mod layering;
mod local_dates;
mod lookbacks;
mod lots;
mod mail;
mod members;
mod migrations;
mod operations;
mod readable;
mod requalification;
mod review;
mod rules_doc;
mod sessions;
mod sterilisation;
