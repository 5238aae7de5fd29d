//! The plan for one node: from the desired state and what the node has, the one command to
//! send (or none). Pure, so check mode and the real run agree by construction.

use crate::desired::{Desired, Mode, State};

/// What a node has now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Current {
    /// The library's code as FUNCTION LIST WITHCODE returns it, `None` when not loaded.
    Library(Option<String>),
    /// Whether SCRIPT EXISTS knows the script's SHA1.
    Script(bool),
}

/// The command for one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `FUNCTION LOAD [REPLACE] <code>`.
    FunctionLoad { replace: bool },
    /// `FUNCTION DELETE <name>`.
    FunctionDelete,
    /// `SCRIPT LOAD <code>`.
    ScriptLoad,
}

impl Action {
    /// The command as reported (the code itself is left out: it is in the diff).
    #[must_use]
    pub fn describe(&self, d: &Desired) -> String {
        match self {
            Action::FunctionLoad { replace: true } => {
                format!("FUNCTION LOAD REPLACE <{}: {}>", d.name, d.origin)
            }
            Action::FunctionLoad { replace: false } => {
                format!("FUNCTION LOAD <{}: {}>", d.name, d.origin)
            }
            Action::FunctionDelete => format!("FUNCTION DELETE {}", d.name),
            Action::ScriptLoad => format!("SCRIPT LOAD <{}: {}>", d.name, d.origin),
        }
    }
}

/// The action for one node, `Ok(None)` when it is as asked.
///
/// # Errors
/// What cannot be done: a library loaded with other code while `replace` is false, a cached
/// script asked to go (Redis can only flush them all).
pub fn plan(d: &Desired, cur: &Current, node: &str) -> Result<Option<Action>, String> {
    match (d.mode, d.state, cur) {
        (Mode::Function, State::Present, Current::Library(None)) => {
            Ok(Some(Action::FunctionLoad { replace: false }))
        }
        (Mode::Function, State::Present, Current::Library(Some(code))) => {
            // Byte for byte: what Redis keeps is exactly what FUNCTION LOAD was given.
            if Some(code.as_str()) == d.code.as_deref() {
                Ok(None)
            } else if d.replace {
                Ok(Some(Action::FunctionLoad { replace: true }))
            } else {
                Err(format!(
                    "{node} has the library `{}` loaded with other code; set `replace: true` to replace it with {} (nothing was changed)",
                    d.name, d.origin
                ))
            }
        }
        (Mode::Function, State::Absent, Current::Library(code)) => {
            Ok(code.as_ref().map(|_| Action::FunctionDelete))
        }
        (Mode::Script, State::Present, Current::Script(loaded)) => {
            Ok((!loaded).then_some(Action::ScriptLoad))
        }
        (Mode::Script, State::Absent, Current::Script(false)) => Ok(None),
        (Mode::Script, State::Absent, Current::Script(true)) => Err(format!(
            "{node} has the script `{}` in its script cache, and Redis cannot remove one script: SCRIPT FLUSH removes every cached script of every application. It goes at the next restart of the server or SCRIPT FLUSH; nothing was changed",
            d.name
        )),
        (Mode::Function, _, Current::Script(_)) | (Mode::Script, _, Current::Library(_)) => {
            Err("internal error: the node was read for the other mode".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Targets;

    fn d(mode: Mode, state: State, replace: bool) -> Desired {
        Desired {
            mode,
            state,
            name: "lib".into(),
            code: Some("#!lua name=lib\nX".into()),
            origin: "src /x.lua".into(),
            replace,
            targets: Targets::Host,
        }
    }

    #[test]
    fn functions_load_only_when_the_code_differs() {
        let p = d(Mode::Function, State::Present, false);
        assert_eq!(
            plan(&p, &Current::Library(None), "n"),
            Ok(Some(Action::FunctionLoad { replace: false }))
        );
        assert_eq!(
            plan(&p, &Current::Library(Some("#!lua name=lib\nX".into())), "n"),
            Ok(None)
        );
        // A trailing newline is a difference: Redis keeps what it was given.
        assert!(plan(
            &p,
            &Current::Library(Some("#!lua name=lib\nX\n".into())),
            "n"
        )
        .is_err());
        let r = d(Mode::Function, State::Present, true);
        assert_eq!(
            plan(&r, &Current::Library(Some("old".into())), "n"),
            Ok(Some(Action::FunctionLoad { replace: true }))
        );
    }

    #[test]
    fn absent_deletes_only_what_is_there() {
        let a = d(Mode::Function, State::Absent, false);
        assert_eq!(plan(&a, &Current::Library(None), "n"), Ok(None));
        assert_eq!(
            plan(&a, &Current::Library(Some("x".into())), "n"),
            Ok(Some(Action::FunctionDelete))
        );
    }

    #[test]
    fn scripts_load_when_missing_and_are_never_flushed() {
        let p = d(Mode::Script, State::Present, false);
        assert_eq!(
            plan(&p, &Current::Script(false), "n"),
            Ok(Some(Action::ScriptLoad))
        );
        assert_eq!(plan(&p, &Current::Script(true), "n"), Ok(None));
        let a = d(Mode::Script, State::Absent, false);
        assert_eq!(plan(&a, &Current::Script(false), "n"), Ok(None));
        assert!(plan(&a, &Current::Script(true), "n")
            .is_err_and(|e| e.contains("cannot remove one script")));
    }
}
