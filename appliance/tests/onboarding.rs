//! The setup wizard through the real d3kosd: resets counted against the licence across
//! restarts and restores, wrong answers refused with nothing kept, and a finished wizard's
//! switches and pairing code.

mod common;

use common::{Daemon, Device, Reply, assert_error, assert_ok, create_owner, get, sign_in, write};
use serde_json::{Value, json};

fn progress(d: &Daemon) -> Value {
    assert_ok(&get(d, "/api/onboarding"))
}

fn save(d: &Daemon, cookie: &str, body: &Value) -> Reply {
    write(d, "PUT", "/api/onboarding", Some(cookie), body)
}

fn reset(d: &Daemon, cookie: &str) -> Reply {
    write(
        d,
        "POST",
        "/api/onboarding/reset",
        Some(cookie),
        &json!({"confirm": true}),
    )
}

/// Some early answers, different in each `round`.
fn early_answers(round: u32) -> Value {
    json!({
        "step": 3,
        "answers": {
            "manufacturer": "Yanmar",
            "model": format!("3YM30 round {round}"),
            "year": 2000 + round,
        },
    })
}

/// The progress without the reset allowance: what a reset or a restore changes.
fn without_resets(mut p: Value) -> Value {
    p.as_object_mut().unwrap().remove("resets");
    p
}

/// The onboarding resets `licence.json` in the state folder counts.
fn resets_on_disk(dev: &Device) -> u64 {
    let licence: Value =
        serde_json::from_slice(&std::fs::read(dev.state().join("licence.json")).unwrap()).unwrap();
    licence["onboarding_resets_used"].as_u64().unwrap()
}

/// The message the wizard's questions table gives `key`.
fn message_of(questions: &Value, key: &str) -> String {
    questions["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["key"] == key)
        .unwrap_or_else(|| panic!("no question {key}"))["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn rule_message(questions: &Value, id: &str) -> String {
    questions["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no rule {id}"))["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn ten_resets_at_tier_0_warn_before_the_last_two_and_the_eleventh_changes_nothing() {
    let dev = Device::new("");
    let d = dev.start();
    let c = create_owner(&dev, &d);

    let fresh = progress(&d);
    assert_eq!(
        fresh["resets"],
        json!({"used": 0, "limit": 10, "remaining": 10, "warning": null})
    );
    assert_eq!((&fresh["step"], &fresh["answers"]), (&json!(1), &json!({})));
    let r = reset(&d, &c);
    assert_error(&r, 409, "conflict");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing to reset"),
        "{}",
        r.json()
    );
    assert_ok(&save(&d, &c, &early_answers(0)));
    assert_error(
        &write(
            &d,
            "POST",
            "/api/onboarding/reset",
            Some(&c),
            &json!({"confirm": false}),
        ),
        400,
        "bad_request",
    );
    assert_eq!(resets_on_disk(&dev), 0, "refusals count nothing");

    let mut warned = Vec::new();
    for n in 1..=10u32 {
        assert_ok(&save(&d, &c, &early_answers(n)));
        let before = progress(&d);
        assert_eq!(before["answers"]["model"], format!("3YM30 round {n}"));
        assert_eq!(before["resets"]["used"], n - 1);
        if let Some(w) = before["resets"]["warning"].as_str() {
            assert!(w.contains(&format!("{} of 10 used", n - 1)), "{w}");
            warned.push(n - 1);
        }
        let done = assert_ok(&reset(&d, &c));
        assert_eq!(done["resets"]["used"], n);
        assert_eq!(done["resets"]["limit"], 10);
        assert_eq!(done["resets"]["remaining"], 10 - n);
        assert_eq!(resets_on_disk(&dev), u64::from(n));
        let after = progress(&d);
        assert_eq!((&after["step"], &after["answers"]), (&json!(1), &json!({})));
        assert_eq!(after["resets"], done["resets"]);
    }
    assert_eq!(warned, [8, 9], "warned while two and one were left");
    let info = assert_ok(&get(&d, "/license/info"));
    assert_eq!(info["onboarding_resets"]["remaining"], 0);

    assert_ok(&save(&d, &c, &early_answers(11)));
    let kept = progress(&d);
    assert_eq!(
        kept["resets"],
        json!({"used": 10, "limit": 10, "remaining": 0, "warning": null})
    );
    let r = reset(&d, &c);
    assert_error(&r, 409, "no_resets_left");
    let m = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        m.contains("Pro or Fleet") && m.contains("fresh d3kOS image"),
        "{m}"
    );
    assert_eq!(progress(&d), kept, "the refused reset changed nothing");
    assert_eq!(resets_on_disk(&dev), 10);

    // A new start reads the count back from the state folder.
    drop(d);
    let d = dev.start();
    let c = sign_in(&d);
    assert_eq!(progress(&d), kept);
    assert_error(&reset(&d, &c), 409, "no_resets_left");

    // The way on the refusal names: a Pro licence allows more.
    let pro = assert_ok(&write(
        &d,
        "PUT",
        "/api/license",
        Some(&c),
        &json!({"tier": 2}),
    ));
    assert_eq!(pro["onboarding_resets"]["remaining"], 9989);
    assert_eq!(
        assert_ok(&reset(&d, &c))["resets"],
        json!({"used": 11, "limit": 9999, "remaining": 9988, "warning": null})
    );
    assert_eq!(progress(&d)["answers"], json!({}));
}

#[test]
fn a_restore_brings_the_backups_answers_back_but_never_lowers_the_reset_count() {
    let dev = Device::new("");
    let d = dev.start();
    let c = create_owner(&dev, &d);
    for n in 1..=3 {
        assert_ok(&save(&d, &c, &early_answers(n)));
        assert_ok(&reset(&d, &c));
    }
    assert_ok(&save(
        &d,
        &c,
        &json!({
            "step": 6,
            "answers": {
                "boat_name": "Sea Otter", "manufacturer": "Volvo Penta", "model": "D2-40",
                "year": 2012, "cylinders": 4, "stroke_cycle": "four", "displacement_l": 2.2,
            },
            "units": {"displacement_l": "cid"},
        }),
    ));
    let at_backup = progress(&d);
    assert_eq!(at_backup["resets"]["used"], 3);
    let created = assert_ok(&write(
        &d,
        "POST",
        "/api/backup/create",
        Some(&c),
        &json!({}),
    ));
    let id = created["id"].as_str().unwrap().to_owned();

    for n in 4..=6 {
        assert_ok(&save(&d, &c, &early_answers(n)));
        assert_ok(&reset(&d, &c));
    }
    assert_ok(&save(&d, &c, &early_answers(7)));
    assert_eq!(progress(&d)["resets"]["used"], 6);

    let restored = assert_ok(&write(
        &d,
        "POST",
        "/api/backup/restore",
        Some(&c),
        &json!({"id": id}),
    ));
    assert!(restored["pre_restore"].is_string(), "{restored}");
    let after = progress(&d);
    assert_eq!(
        without_resets(after.clone()),
        without_resets(at_backup),
        "the answers, units and step are the backup's"
    );
    assert_eq!(
        after["resets"],
        json!({"used": 6, "limit": 10, "remaining": 4, "warning": null}),
        "the count is the device's, not the backup's 3"
    );
    assert_eq!(resets_on_disk(&dev), 6);
    assert_eq!(
        assert_ok(&get(&d, "/license/info"))["onboarding_resets"]["used"],
        6
    );
    // Counting goes on from the device's count.
    assert_eq!(assert_ok(&reset(&d, &c))["resets"]["used"], 7);
    assert_eq!(resets_on_disk(&dev), 7);
}

#[test]
fn tier_3_counts_to_9999_warns_at_9997_and_9998_and_keeps_the_count_across_a_restart_and_a_restore()
{
    let dev = Device::new("tier = 3\n");
    common::archive::write(
        &dev.state(),
        "licence.json",
        br#"{"installation_id":"0123456789abcdef","tier":3,"onboarding_resets_used":9996}"#,
        0o600,
    );
    let d = dev.start();
    let c = create_owner(&dev, &d);
    assert_eq!(
        progress(&d)["resets"],
        json!({"used": 9996, "limit": 9999, "remaining": 3, "warning": null})
    );
    // A backup made while three resets were left.
    assert_ok(&save(&d, &c, &early_answers(0)));
    let backup = assert_ok(&write(
        &d,
        "POST",
        "/api/backup/create",
        Some(&c),
        &json!({}),
    ))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut warned = Vec::new();
    for used in 9997..=9999u32 {
        assert_ok(&save(&d, &c, &early_answers(used - 9996)));
        let before = progress(&d)["resets"].clone();
        if let Some(w) = before["warning"].as_str() {
            assert!(w.contains(&format!("{} of 9999 used", used - 1)), "{w}");
            warned.push(before["used"].as_u64().unwrap());
        }
        let done = assert_ok(&reset(&d, &c));
        assert_eq!(done["resets"]["used"], used);
        assert_eq!(done["resets"]["remaining"], 9999 - used);
    }
    assert_eq!(warned, [9997, 9998]);
    assert_ok(&save(&d, &c, &early_answers(1)));
    let kept = progress(&d);
    let r = reset(&d, &c);
    assert_error(&r, 409, "no_resets_left");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("All 9999 resets"),
        "{}",
        r.json()
    );
    assert_eq!(progress(&d), kept, "the refused reset changed nothing");
    assert_eq!(resets_on_disk(&dev), 9999);

    drop(d);
    let d = dev.start();
    let c = sign_in(&d);
    let info = assert_ok(&get(&d, "/license/info"));
    assert_eq!(info["installation_id"], "0123456789abcdef");
    assert_eq!(
        info["onboarding_resets"],
        json!({"used": 9999, "limit": 9999, "remaining": 0, "warning": null})
    );
    assert_eq!(progress(&d), kept);
    assert_error(&reset(&d, &c), 409, "no_resets_left");

    // Restoring the backup from 9996 brings its answers back, not its count.
    assert_ok(&write(
        &d,
        "POST",
        "/api/backup/restore",
        Some(&c),
        &json!({"id": backup}),
    ));
    let restored = progress(&d);
    assert_eq!(restored["answers"]["model"], "3YM30 round 0", "{restored}");
    assert_eq!(
        restored["resets"],
        json!({"used": 9999, "limit": 9999, "remaining": 0, "warning": null})
    );
    assert_eq!(resets_on_disk(&dev), 9999);
    assert_error(&reset(&d, &c), 409, "no_resets_left");
}

#[test]
fn wrong_answers_are_refused_by_field_and_nothing_of_them_is_kept() {
    let dev = Device::new("");
    let d = dev.start();
    let c = create_owner(&dev, &d);
    let qs = assert_ok(&get(&d, "/api/onboarding/questions"));
    let good = json!({
        "manufacturer": "Yanmar", "model": "3YM30", "year": 2010, "cylinders": 3,
        "stroke_cycle": "four", "displacement_l": 1.115, "wot_min_rpm": 3400,
        "wot_max_rpm": 3600, "min_oil_idle_psi": 10, "min_oil_cruise_psi": 40,
    });
    assert_ok(&save(
        &d,
        &c,
        &json!({"step": 13, "answers": good, "units": {"displacement_l": "cid"}}),
    ));
    let kept = progress(&d);
    assert_eq!(kept["step"], 13);
    assert_eq!(kept["answers"]["model"], "3YM30");
    assert_eq!(kept["units"], json!({"displacement_l": "cid"}));

    // Each wrong save also changes a right answer and the step: none of it may stay.
    let with = |changes: Value| {
        let mut a = good.clone();
        a["manufacturer"] = json!("Volvo Penta");
        for (k, v) in changes.as_object().unwrap() {
            a[k] = v.clone();
        }
        json!({"step": 14, "answers": a})
    };
    let m = |key| message_of(&qs, key);
    let wot_order = rule_message(&qs, "wot_order");
    let mut other_unit = with(json!({}));
    other_unit["units"] = json!({"year": "cid"});
    let cases = [
        (
            "year 1949",
            with(json!({"year": 1949})),
            json!({"year": m("year")}),
        ),
        (
            "displacement 15.5 L",
            with(json!({"displacement_l": 15.5})),
            json!({"displacement_l": m("displacement_l")}),
        ),
        (
            "highest WOT equal to the lowest",
            with(json!({"wot_min_rpm": 5000, "wot_max_rpm": 5000})),
            json!({"wot_max_rpm": wot_order}),
        ),
        (
            "highest WOT below the lowest",
            with(json!({"wot_min_rpm": 5000, "wot_max_rpm": 4000})),
            json!({"wot_max_rpm": wot_order}),
        ),
        (
            "cruise oil pressure 90 PSI",
            with(json!({"min_oil_cruise_psi": 90})),
            json!({"min_oil_cruise_psi": m("min_oil_cruise_psi")}),
        ),
        (
            "the year as a text",
            with(json!({"year": "2010"})),
            json!({"year": m("year")}),
        ),
        (
            "a 30 KB model",
            with(json!({"model": "x".repeat(30_000)})),
            json!({"model": m("model")}),
        ),
        (
            "an answer to no question",
            with(json!({"colour": "red"})),
            json!({"colour": "There is no question `colour`."}),
        ),
        (
            "two wrong at once",
            with(json!({"year": 1949, "displacement_l": 15.5})),
            json!({"year": m("year"), "displacement_l": m("displacement_l")}),
        ),
        (
            "a unit the question does not offer",
            other_unit,
            json!({"units.year": "Choose one of the units the question offers."}),
        ),
    ];
    for (what, body, expected) in cases {
        let r = save(&d, &c, &body);
        assert_error(&r, 400, "bad_request");
        assert_eq!(r.json()["error"]["fields"], expected, "{what}");
        assert_eq!(progress(&d), kept, "{what}: nothing was kept");
    }

    for (what, body, named) in [
        (
            "the step as a text",
            json!({"step": "3", "answers": good}),
            "step",
        ),
        (
            "answers as a list",
            json!({"step": 3, "answers": [good]}),
            "answers",
        ),
        (
            "a field the save does not have",
            json!({"step": 3, "answers": good, "colour": "red"}),
            "colour",
        ),
    ] {
        let r = save(&d, &c, &body);
        assert_error(&r, 400, "bad_json");
        let m = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(m.contains(named), "{what}: {m}");
        assert_eq!(progress(&d), kept, "{what}: nothing was kept");
    }
    for step in [0, 21] {
        assert_error(
            &save(&d, &c, &json!({"step": step, "answers": good})),
            400,
            "bad_request",
        );
        assert_eq!(progress(&d), kept, "step {step}: nothing was kept");
    }

    let r = write(
        &d,
        "PUT",
        "/api/onboarding",
        None,
        &json!({"step": 14, "answers": {"manufacturer": "Volvo Penta"}}),
    );
    assert_error(&r, 401, "unauthorized");
    assert_eq!(progress(&d), kept, "a stranger's save was not kept");
}

#[test]
fn a_finished_wizard_gives_its_switches_and_a_pairing_code_that_scans_to_its_url() {
    let dev = Device::new("");
    let d = dev.start();
    let c = create_owner(&dev, &d);
    let qs = assert_ok(&get(&d, "/api/onboarding/questions"));
    assert_eq!(qs["steps"].as_array().unwrap().len(), 20);
    let mut answers = serde_json::Map::new();
    for q in qs["questions"].as_array().unwrap() {
        if !q["default"].is_null() {
            answers.insert(q["key"].as_str().unwrap().to_owned(), q["default"].clone());
        }
    }
    answers.insert("boat_name".into(), json!("Sea Otter & Co/Ørn"));
    answers.insert("manufacturer".into(), json!("Yanmar"));
    answers.insert("model".into(), json!("3YM30"));

    // The switches need every answer: not before, not at step 18 with one missing.
    assert_error(&get(&d, "/api/onboarding/dip"), 409, "unanswered");
    let mut some = answers.clone();
    some.remove("sender");
    let r = save(&d, &c, &json!({"step": 18, "answers": some}));
    assert_error(&r, 409, "unanswered");
    assert_eq!(
        r.json()["error"]["fields"],
        json!({"sender": "Not answered yet."})
    );
    assert_eq!(progress(&d)["answers"], json!({}));

    let done = assert_ok(&save(&d, &c, &json!({"step": 20, "answers": answers})));
    assert_eq!(done["step"], 20);
    assert_eq!(done["finished"], true);
    assert!(done["finished_at"].as_i64().unwrap() > 0, "{done}");
    assert_eq!(done["unanswered"], json!([]));
    assert_eq!(done["answers"]["year"], 2010);
    assert_eq!(done["answers"]["sender"], "north_american");
    assert_eq!(progress(&d)["answers"], done["answers"]);

    let dip = assert_ok(&get(&d, "/api/onboarding/dip"));
    let switches: Vec<(u64, &str, bool)> = dip["switches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["row"].as_u64().unwrap(),
                s["label"].as_str().unwrap(),
                s["on"].as_bool().unwrap(),
            )
        })
        .collect();
    // Single engine, alternator, 4 cylinders, 4-stroke, 1:1: row 1 all OFF; North
    // American senders: row 2's "1" ON; not the starboard engine: "2" OFF.
    assert_eq!(
        switches,
        [
            (1, "SW1", false),
            (1, "SW2", false),
            (1, "SW3", false),
            (1, "SW4", false),
            (1, "SW5", false),
            (1, "SW6", false),
            (1, "SW7", false),
            (1, "SW8", false),
            (2, "1", true),
            (2, "2", false),
        ]
    );
    assert_eq!(dip["supported"], true);
    assert_eq!(dip["notes"], json!([]));
    assert_eq!(
        dip["engine"],
        json!({"manufacturer": "Yanmar", "model": "3YM30", "year": 2010, "boat_name": "Sea Otter & Co/Ørn"})
    );

    // Finished: back to the switches with the same answers is fine, other answers are not.
    let back = assert_ok(&save(&d, &c, &json!({"step": 18, "answers": answers})));
    assert_eq!(back["finished_at"], done["finished_at"]);
    let mut changed = answers.clone();
    changed.insert("cylinders".into(), json!(6));
    assert_error(
        &save(&d, &c, &json!({"step": 18, "answers": changed})),
        409,
        "conflict",
    );
    assert_eq!(progress(&d)["answers"], done["answers"]);

    let id = assert_ok(&get(&d, "/license/info"))["installation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for tier in [0, 3] {
        if tier != 0 {
            assert_ok(&write(
                &d,
                "PUT",
                "/api/license",
                Some(&c),
                &json!({"tier": tier}),
            ));
        }
        let r = get(&d, "/api/onboarding/pairing");
        let version = r.json()["version"].as_str().unwrap().to_owned();
        let url = format!(
            "d3kos://pair?id={id}&version={version}&tier={tier}&boat=Sea%20Otter%20%26%20Co%2F%C3%98rn"
        );
        assert_eq!(assert_ok(&r)["url"], url.as_str());
        let qr = get(&d, "/api/onboarding/qr.svg");
        assert_eq!(qr.status, 200);
        assert_eq!(qr.header("content-type"), Some("image/svg+xml"));
        assert_eq!(qr.header("cache-control"), Some("no-store"));
        assert_eq!(common::qr::read(&String::from_utf8(qr.body).unwrap()), url);
    }
}
