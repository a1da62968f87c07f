//! WeMaster: a marketplace backend for tutors and students in one binary.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod cache;
pub mod catalogue;
pub mod cli;
pub mod clock;
pub mod compression;
pub mod config;
pub mod db;
pub mod demo;
pub mod enum_hints;
pub mod error;
pub mod health;
pub mod ids;
pub mod logging;
pub mod ops;
pub mod orders;
pub mod paging;
pub mod payments;
pub mod protection;
pub mod server;
pub mod state;
pub mod tags;
pub mod text;
