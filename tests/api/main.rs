//! Integration tests: the real server on a loopback port with a temporary
//! database file, driven over real HTTP.
#![recursion_limit = "256"]

mod admin;
mod auth;
mod catalogue;
mod cli;
mod config;
mod connections;
mod docs;
mod fake_stripe;
mod health;
mod helpers;
mod layout;
mod mail;
mod migrations;
mod ops;
mod orders;
mod payments;
mod protection;
mod replication;
mod seats;
mod seed;
mod tutors;
