//! The setup wizard: its questions and steps (`questions`), the progress kept in the state
//! folder (`store`), what follows from the answers (the CX5106 gateway's `dip` switches,
//! the engine monitor's `limits`, the phone's `pairing` code), and resets counted against
//! the licence.

pub mod dip;
pub mod limits;
pub mod pairing;
pub mod questions;
pub mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::licence::{Licence, ResetAllowance};
use questions::{DIP_STEP, LAST_STEP, Problem, Question};
use store::{Progress, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error("{}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join(" "))]
    Invalid(Vec<Problem>),
    #[error("step {0} does not exist: the wizard's steps are 1 to {LAST_STEP}")]
    NoSuchStep(u8),
    #[error(
        "the wizard is finished, so its answers are kept as they are: reset the wizard to answer again"
    )]
    Finished,
    #[error("answer every question before the switches and the pairing code; not answered yet: {}", .0.join(", "))]
    Unanswered(Vec<&'static str>),
    #[error(
        "send {{\"confirm\": true}} to reset the wizard: a reset forgets every answer and counts against the licence"
    )]
    NotConfirmed,
    #[error("there is nothing to reset: no answers are kept")]
    NothingToReset,
    #[error("{0}")]
    NoResetsLeft(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the licence: {0}")]
    Licence(#[from] crate::state::StateError),
}

/// A save of the wizard's progress (`PUT /api/onboarding`): the step the owner is going to
/// and every answer so far. Step 20 finishes the wizard.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Save {
    pub step: u8,
    pub answers: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub units: BTreeMap<String, String>,
}

/// What the page is told: the progress, what is still unanswered, and the resets.
#[derive(Debug, Serialize)]
pub struct View {
    #[serde(flatten)]
    pub progress: Progress,
    pub finished: bool,
    pub unanswered: Vec<&'static str>,
    pub resets: ResetAllowance,
}

pub fn view(p: Progress, qs: &[Question], licence: &Licence) -> View {
    View {
        finished: p.finished_at.is_some(),
        unanswered: questions::missing(&p.answers, qs),
        resets: ResetAllowance::of(licence.tier, licence.onboarding_resets_used),
        progress: p,
    }
}

/// Checks and keeps `s`. Nothing is kept when anything in it is wrong.
pub fn save(
    store: &Store,
    s: &Save,
    qs: &[Question],
    now: i64,
) -> Result<Progress, OnboardingError> {
    if !(1..=LAST_STEP).contains(&s.step) {
        return Err(OnboardingError::NoSuchStep(s.step));
    }
    let answers = questions::check(&s.answers, qs);
    let units = questions::check_units(&s.units, qs);
    let (answers, units) = match (answers, units) {
        (Ok(a), Ok(u)) => (a, u),
        (a, u) => {
            let mut p = a.err().unwrap_or_default();
            p.extend(u.err().unwrap_or_default());
            return Err(OnboardingError::Invalid(p));
        }
    };
    let current = store.load()?;
    if current.finished_at.is_some() && answers != current.answers {
        return Err(OnboardingError::Finished);
    }
    let unanswered = questions::missing(&answers, qs);
    if s.step >= DIP_STEP && !unanswered.is_empty() {
        return Err(OnboardingError::Unanswered(unanswered));
    }
    let finished_at = current.finished_at.or((s.step == LAST_STEP).then_some(now));
    let p = Progress {
        step: s.step,
        answers,
        units,
        finished_at,
        updated_at: Some(now),
    };
    store.save(&p, now)?;
    Ok(p)
}

/// Forgets every answer and counts the reset against the licence, which is saved first: a
/// cut between the two leaves the reset counted, never a free one.
pub fn reset(
    store: &Store,
    licence: &mut Licence,
    licence_path: &std::path::Path,
    confirm: bool,
    now: i64,
) -> Result<ResetAllowance, OnboardingError> {
    if !confirm {
        return Err(OnboardingError::NotConfirmed);
    }
    let allowance = ResetAllowance::of(licence.tier, licence.onboarding_resets_used);
    if allowance.remaining == 0 {
        return Err(OnboardingError::NoResetsLeft(
            allowance.refusal(licence.tier),
        ));
    }
    let p = store.load()?;
    if p.answers.is_empty() && p.finished_at.is_none() && p.step == 1 {
        return Err(OnboardingError::NothingToReset);
    }
    let next = Licence {
        onboarding_resets_used: licence.onboarding_resets_used + 1,
        ..licence.clone()
    };
    crate::state::save(licence_path, &next)?;
    *licence = next;
    store.clear(now)?;
    Ok(ResetAllowance::of(
        licence.tier,
        licence.onboarding_resets_used,
    ))
}

/// The gateway's switches for the answers so far, or the questions they still need.
pub fn switches(p: &Progress) -> Result<dip::Setting, Vec<&'static str>> {
    use dip::{Engine, Position, RpmSource, SenderStandard, Stroke};
    fn pick<T: serde::de::DeserializeOwned>(p: &Progress, k: &str) -> Option<T> {
        serde_json::from_value(p.answers.get(k)?.clone()).ok()
    }
    let position: Option<Position> = pick(p, "position");
    let rpm_source: Option<RpmSource> = pick(p, "rpm_source");
    let cylinders: Option<u8> = pick(p, "cylinders");
    let stroke: Option<Stroke> = pick(p, "stroke_cycle");
    let gear_ratio: Option<f64> = pick(p, "gear_ratio");
    let sender: Option<SenderStandard> = pick(p, "sender");
    match (position, rpm_source, cylinders, stroke, gear_ratio, sender) {
        (
            Some(position),
            Some(rpm_source),
            Some(cylinders),
            Some(stroke),
            Some(gear_ratio),
            Some(sender),
        ) => Ok(dip::switches(&Engine {
            position,
            rpm_source,
            cylinders,
            stroke,
            gear_ratio,
            sender,
        })),
        _ => Err([
            ("position", position.is_none()),
            ("rpm_source", rpm_source.is_none()),
            ("cylinders", cylinders.is_none()),
            ("stroke_cycle", stroke.is_none()),
            ("gear_ratio", gear_ratio.is_none()),
            ("sender", sender.is_none()),
        ]
        .into_iter()
        .filter_map(|(k, gone)| gone.then_some(k))
        .collect()),
    }
}

/// The boat's name from the answers, if given.
pub fn boat_name(p: &Progress) -> Option<&str> {
    p.answers
        .get("boat_name")
        .and_then(serde_json::Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all() -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        for q in questions::questions(2026) {
            if !q.default.is_null() {
                m.insert(q.key.into(), q.default.clone());
            }
        }
        m.insert("manufacturer".into(), json!("Yanmar"));
        m.insert("model".into(), json!("3YM30"));
        m
    }

    fn setup() -> (tempfile::TempDir, Store, Licence) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::in_state(dir.path());
        let licence = Licence {
            installation_id: "00112233aabbccdd".into(),
            tier: 0,
            onboarding_resets_used: 0,
        };
        (dir, store, licence)
    }

    #[test]
    fn a_wrong_save_keeps_nothing_and_names_every_field() {
        let (_d, store, _) = setup();
        let qs = questions::questions(2026);
        let mut a = all();
        a.insert("year".into(), json!(1949));
        let s = Save {
            step: 4,
            answers: a,
            units: [("year".into(), "l".into())].into(),
        };
        let Err(OnboardingError::Invalid(p)) = save(&store, &s, &qs, 5) else {
            panic!("refused")
        };
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["year", "units.year"]);
        assert_eq!(store.load().unwrap(), Progress::default());
    }

    #[test]
    fn the_switches_need_every_answer_and_step_20_finishes_and_locks_the_answers() {
        let (_d, store, _) = setup();
        let qs = questions::questions(2026);
        let mut some = all();
        some.remove("sender");
        let early = Save {
            step: DIP_STEP,
            answers: some.clone(),
            units: BTreeMap::new(),
        };
        assert!(matches!(
            save(&store, &early, &qs, 1),
            Err(OnboardingError::Unanswered(k)) if k == ["sender"]
        ));
        let done = Save {
            step: LAST_STEP,
            answers: all(),
            units: BTreeMap::new(),
        };
        let p = save(&store, &done, &qs, 9).unwrap();
        assert_eq!(p.finished_at, Some(9));
        assert_eq!(switches(&p).unwrap().switches.len(), 10);
        // Back to the switches to print them: allowed, the answers unchanged.
        let back = Save {
            step: DIP_STEP,
            ..done
        };
        assert_eq!(save(&store, &back, &qs, 12).unwrap().finished_at, Some(9));
        let changed = Save {
            step: DIP_STEP,
            answers: some,
            units: BTreeMap::new(),
        };
        assert!(matches!(
            save(&store, &changed, &qs, 13),
            Err(OnboardingError::Finished)
        ));
    }

    #[test]
    fn a_full_disk_refuses_the_save_and_the_reset_and_keeps_the_last_progress() {
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
            eprintln!("skipped: mounting a small tmpfs needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(&state)
            .status()
            .unwrap();
        assert!(mounted.success());
        let store = Store::in_state(&state);
        let qs = questions::questions(2026);
        let path = Licence::path(&state);
        let mut licence = Licence {
            installation_id: "00112233aabbccdd".into(),
            tier: 0,
            onboarding_resets_used: 2,
        };
        crate::state::save(&path, &licence).unwrap();
        let first = save(
            &store,
            &Save {
                step: 5,
                answers: all(),
                units: BTreeMap::new(),
            },
            &qs,
            1,
        )
        .unwrap();
        // Whatever room is left is taken.
        let mut filler = std::fs::File::create(state.join("filler")).unwrap();
        while std::io::Write::write_all(&mut filler, &[0u8; 4096]).is_ok() {}
        drop(filler);
        let mut changed = all();
        changed.insert("model".into(), json!("3YM20"));
        let refused = save(
            &store,
            &Save {
                step: 6,
                answers: changed,
                units: BTreeMap::new(),
            },
            &qs,
            2,
        );
        let reset_refused = reset(&store, &mut licence, &path, true, 3);
        let kept = store.load();
        let on_disk: Option<Licence> = crate::state::load(&path, 0).unwrap();
        // The pool's open connections keep the file system busy.
        drop(store);
        assert!(
            std::process::Command::new("umount")
                .arg(&state)
                .status()
                .unwrap()
                .success()
        );
        assert!(
            matches!(&refused, Err(OnboardingError::Store(e)) if e.is_full()),
            "{refused:?}"
        );
        assert!(
            matches!(&reset_refused, Err(OnboardingError::Licence(e)) if crate::state::is_full(e)),
            "{reset_refused:?}"
        );
        // Regression: the temporary file's ENOSPC comes wrapped, and once answered 500.
        if let Err(OnboardingError::Licence(e)) = &reset_refused {
            assert_eq!(crate::api::ApiError::storage(e).code, "no_space");
        }
        assert_eq!(kept.unwrap(), first, "the last progress is kept whole");
        assert_eq!(licence.onboarding_resets_used, 2);
        assert_eq!(on_disk.unwrap().onboarding_resets_used, 2);
    }

    #[test]
    fn a_reset_is_counted_before_the_answers_go_and_refused_when_none_is_left() {
        let (d, store, mut licence) = setup();
        let qs = questions::questions(2026);
        let path = Licence::path(d.path());
        let answered = Save {
            step: 3,
            answers: all(),
            units: BTreeMap::new(),
        };
        assert!(matches!(
            reset(&store, &mut licence, &path, false, 1),
            Err(OnboardingError::NotConfirmed)
        ));
        assert!(matches!(
            reset(&store, &mut licence, &path, true, 1),
            Err(OnboardingError::NothingToReset)
        ));
        for n in 1..=10 {
            save(&store, &answered, &qs, 1).unwrap();
            let a = reset(&store, &mut licence, &path, true, 2).unwrap();
            assert_eq!(a.used, n);
            assert_eq!(store.load().unwrap().answers.len(), 0);
        }
        let on_disk: Licence = crate::state::load(&path, 0).unwrap().unwrap();
        assert_eq!(on_disk.onboarding_resets_used, 10);
        save(&store, &answered, &qs, 1).unwrap();
        let Err(OnboardingError::NoResetsLeft(m)) = reset(&store, &mut licence, &path, true, 3)
        else {
            panic!("the 11th is refused")
        };
        assert!(
            m.contains("Pro or Fleet") && m.contains("fresh d3kOS image"),
            "{m}"
        );
        assert_eq!(
            store.load().unwrap().answers.len(),
            all().len(),
            "nothing was changed"
        );
    }
}
