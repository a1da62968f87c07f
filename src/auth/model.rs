//! Account types.

use poem_openapi::Enum;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Student,
    Tutor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "STUDENT",
            Role::Tutor => "TUTOR",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "STUDENT" => Some(Role::Student),
            "TUTOR" => Some(Role::Tutor),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A new account, its password already hashed.
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub role: Role,
    pub created_at: String,
}
