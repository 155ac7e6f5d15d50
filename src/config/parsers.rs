//! Value parsers whose errors fit the one line `main` prints: a bad value is quoted escaped,
//! or, for settings that may hold a secret (a URL with a password in it, a key), not shown.

use std::ffi::OsStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

/// Parses with `parse`, quoting a bad value escaped: clap quotes it as it is, and a line break
/// in it would split the one line `main` prints (losing the variable's name).
#[derive(Debug, Clone, Copy)]
pub(super) struct Escaped<T>(pub(super) fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Escaped<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        (self.0)(&text).map_err(|reason| invalid(cmd, arg, &format!("{text:?}"), &reason))
    }
}

/// Parses with `parse`; a bad value is reported by its setting's name and the reason alone.
/// clap's own error would quote the value, and `main` prints that line to the log.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hidden<T>(pub(super) fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Hidden<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let shown = "(not shown: it may hold a secret)";
        let text = value
            .to_str()
            .ok_or_else(|| invalid(cmd, arg, shown, "not UTF-8"))?;
        (self.0)(text).map_err(|reason| invalid(cmd, arg, shown, &reason))
    }
}

/// A one-line "invalid value" error naming the flag and its variable.
fn invalid(cmd: &clap::Command, arg: Option<&clap::Arg>, shown: &str, reason: &str) -> clap::Error {
    let name = arg.map_or_else(|| "a setting".to_owned(), |arg| format!("'{arg}'"));
    clap::Error::raw(
        ErrorKind::ValueValidation,
        format!("invalid value {shown} for {name}: {reason}\n"),
    )
    .with_cmd(cmd)
}
