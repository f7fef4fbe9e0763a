//! The `homeward` command line: run the server, and the admin commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::configuration::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "homeward",
    version,
    about = "Homeward: lone-worker safety for schools. Runs the server (the default) and the admin commands."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve {
        /// Seed the demo school on first start and print its sign-ins.
        #[arg(long)]
        demo: bool,
    },
    /// Create a school with its first admin.
    CreateSchool {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_name: String,
        /// At least 10 characters.
        #[arg(long, env = "HOMEWARD_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: String,
    },
    /// Add a user to a school.
    AddUser {
        #[arg(long)]
        school_id: Uuid,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Roles separated by `;` or `,`: staff, leader, dsl, admin.
        #[arg(long)]
        roles: String,
        /// The line manager's e-mail (already in the school).
        #[arg(long)]
        line_manager_email: Option<String>,
        #[arg(long, env = "HOMEWARD_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Import staff from a CSV file with the header `email,name,roles,line_manager_email,password`.
    /// Every bad row is reported with its line number and nothing is imported unless all are good.
    ImportStaff {
        #[arg(long)]
        school_id: Uuid,
        file: PathBuf,
    },
    /// Create the demo school with invented staff and a few planned visits (once).
    SeedDemo,
}
