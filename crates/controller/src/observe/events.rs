//! Events, kept within what the API server accepts: it refuses an Event
//! whose note is longer than 1 kB, and a refused Warning is a lost one. The
//! full text stays in the object's status condition.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::warn;
use vaultsync_api::{Condition, ConditionStatus};

/// The API server's limit on an Event's note, in bytes.
const NOTE_MAX_BYTES: usize = 1024;
const CUT_MARK: &str = " … (cut; the full text is in the status condition)";

/// Publishes an Event about `object`; failures are logged, never fatal.
pub(crate) async fn publish(
    recorder: &Recorder,
    object: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    publish_related(recorder, object, None, type_, reason, action, note).await;
}

/// [`publish`] with a second object the Event is about. The recorder folds
/// Events of the same reason about the same objects into one (a series
/// keeping the first note), so Events about several others of one object,
/// such as each restart target, need it to stay apart.
pub(crate) async fn publish_related(
    recorder: &Recorder,
    object: &ObjectReference,
    related: Option<ObjectReference>,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event =
        Event { type_, reason: reason.into(), note: Some(fit_note(note)), action: action.into(), secondary: related };
    if let Err(e) = recorder.publish(&event, object).await {
        let name = object.name.as_deref().unwrap_or_default();
        warn!(kind = ?object.kind, object = %name, error = %e, "cannot publish event");
    }
}

/// Events when an object (a store, a ClusterExternalSecret) starts failing
/// (a Warning, again whenever the reason or message changes) and when it
/// works again after failing (Normal), from its Ready condition before
/// and now, so `kubectl describe` and event-based alerting see them, not
/// only ExternalSecrets.
pub(crate) async fn announce_change(
    recorder: &Recorder,
    object: &ObjectReference,
    previous: &[Condition],
    now: &Condition,
    action: &str,
) {
    if let Some((type_, reason, note)) = change_event(previous, now) {
        publish(recorder, object, type_, &reason, action, note).await;
    }
}

fn change_event(previous: &[Condition], now: &Condition) -> Option<(EventType, String, String)> {
    let before = previous.iter().find(|c| c.type_ == "Ready");
    let was_failing = before.is_some_and(|c| c.status == ConditionStatus::False);
    let reason = now.reason.clone().unwrap_or_default();
    let message = now.message.clone().unwrap_or_default();
    match now.status {
        ConditionStatus::True if was_failing => Some((EventType::Normal, reason, format!("works again: {message}"))),
        ConditionStatus::False
            if !was_failing
                || before.is_some_and(|c| {
                    c.reason.as_deref() != Some(&reason) || c.message.as_deref() != Some(&message)
                }) =>
        {
            Some((EventType::Warning, reason, message))
        }
        _ => None,
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

    fn ready(status: ConditionStatus, reason: &str, message: &str) -> Condition {
        Condition {
            type_: "Ready".into(),
            status,
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: None,
        }
    }

    #[test]
    fn warnings_on_failure_and_its_changes_normal_on_recovery() {
        let failing = ready(ConditionStatus::False, "NotProvisioned", "could not provision namespace(s): a");
        let working = ready(ConditionStatus::True, "Provisioned", "in 2 namespace(s)");
        let kind = |e: Option<(EventType, String, String)>| e.map(|(t, r, _)| (t == EventType::Warning, r));
        assert_eq!(kind(change_event(&[], &failing)), Some((true, "NotProvisioned".into())));
        assert_eq!(kind(change_event(std::slice::from_ref(&working), &failing)), Some((true, "NotProvisioned".into())));
        assert_eq!(change_event(std::slice::from_ref(&failing), &failing), None, "the same failure again: quiet");
        let other = ready(ConditionStatus::False, "NotProvisioned", "could not provision namespace(s): a, b");
        assert!(change_event(std::slice::from_ref(&failing), &other).is_some(), "a new message is told");
        let recovered = change_event(&[failing], &working).unwrap();
        assert!(recovered.0 == EventType::Normal && recovered.2.starts_with("works again"), "{recovered:?}");
        assert_eq!(change_event(std::slice::from_ref(&working), &working), None);
        assert_eq!(change_event(&[], &working), None, "a first success is not news");
    }

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
