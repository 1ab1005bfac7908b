//! Events, kept within what the API server accepts: it refuses an Event
//! whose note is longer than 1 kB, and a refused Warning is a lost one. The
//! full text stays in the object's status condition.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use tracing::warn;

use crate::context::Context;

/// The API server's limit on an Event's note, in bytes.
const NOTE_MAX_BYTES: usize = 1024;
const CUT_MARK: &str = " … (cut; the full text is in the status condition)";

/// Publishes an Event about `object`; failures are logged, never fatal.
pub(crate) async fn publish(
    ctx: &Context,
    object: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event =
        Event { type_, reason: reason.into(), note: Some(fit_note(note)), action: action.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, object).await {
        let name = object.name.as_deref().unwrap_or_default();
        warn!(kind = ?object.kind, object = %name, error = %e, "cannot publish event");
    }
}

/// `note`, cut at a character boundary to fit the API server's limit.
pub(crate) fn fit_note(note: String) -> String {
    if note.len() <= NOTE_MAX_BYTES {
        return note;
    }
    let mut end = NOTE_MAX_BYTES - CUT_MARK.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_to_the_api_limit_at_a_character_boundary() {
        assert_eq!(fit_note("short".into()), "short");
        let exact = "a".repeat(NOTE_MAX_BYTES);
        assert_eq!(fit_note(exact.clone()), exact);
        let long = "é".repeat(2000);
        let cut = fit_note(long);
        assert!(cut.len() <= NOTE_MAX_BYTES, "{}", cut.len());
        assert!(cut.ends_with(CUT_MARK) && cut.starts_with('é'));
    }
}
