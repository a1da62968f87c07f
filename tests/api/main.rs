//! Integration tests: the real server on a loopback port with a temporary
//! database file, driven over real HTTP.

mod auth;
mod catalogue;
mod cli;
mod config;
mod docs;
mod health;
mod helpers;
mod migrations;
mod seed;
