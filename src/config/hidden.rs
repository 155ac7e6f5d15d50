//! Reading settings that may hold a secret — a URL with a password in it, a key — so that a bad
//! value is reported without being shown.

use std::ffi::OsStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

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
        let name = arg.map_or_else(|| "a setting".to_owned(), |arg| format!("'{arg}'"));
        let invalid = |reason: &str| {
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("invalid value (not shown: it may hold a secret) for {name}: {reason}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| invalid("not UTF-8"))?;
        (self.0)(text).map_err(|reason| invalid(&reason))
    }
}
