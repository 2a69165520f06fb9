//! Ten hubs, two admins' devices and a seed of the fleet, each in its own network namespace
//! on one LAN: an edit of the base reaches all ten wave by wave; a group edit by the other
//! admin reaches only that group; hubs offline during a rollout converge on their return;
//! `fleet status` matches what each hub runs; a wave whose canary refuses its config stops
//! the rollout with every later hub untouched.

use cobox_tests::fleet_lab::FleetLab;
use cobox_tests::node::{eventually, show};

fn devices(outcome: &serde_json::Value, result: &str) -> Vec<String> {
    let mut names: Vec<String> = outcome["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["devices"].as_array().unwrap().clone())
        .filter(|d| d["result"] == result)
        .map(|d| d["device"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn names(of: impl IntoIterator<Item = usize>) -> Vec<String> {
    let mut v: Vec<String> = of.into_iter().map(|i| format!("h{}", i + 1)).collect();
    v.sort();
    v
}

#[test]
fn a_fleet_of_ten_hubs_follows_its_admins_in_waves() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lab = FleetLab::new(tmp.path(), 10, 91, "10m");
    let space = |name: &str| format!("[[space]]\nname = \"{name}\"\nmount = false\n");

    // One edit of the base reaches all ten, in three waves (the canary first).
    lab.write_base(&space("everywhere"));
    let (code, outcome) = lab.apply(0, &["--waves", "1,50%,100%", "--timeout", "120s"]);
    assert_eq!(code, Some(0), "{outcome}\n{}", lab.logs());
    assert_eq!(outcome["done"], true);
    let waves: Vec<usize> = outcome["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["devices"].as_array().unwrap().len())
        .collect();
    assert_eq!(waves, [1, 4, 5], "{outcome}");
    assert_eq!(outcome["waves"][0]["devices"][0]["device"], "h1");
    assert_eq!(devices(&outcome, "converged"), names(0..10));
    for i in 0..10 {
        assert!(lab.running(i).contains("everywhere"), "h{} runs it", i + 1);
    }

    // The other admin edits the west group: only its five hubs differ and change.
    lab.write_layer("groups/west.toml", &space("west-only"));
    let diff = lab.fleet(1, "diff", &["--output", "json"]);
    assert_eq!(diff.status.code(), Some(1), "{}", show(&diff));
    let diff: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    let mut changed: Vec<String> = diff
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["state"] == "changed")
        .map(|d| d["device"].as_str().unwrap().to_string())
        .collect();
    changed.sort();
    assert_eq!(changed, names(5..10), "{diff}");
    let east_before: Vec<String> = (0..5).map(|i| lab.running(i)).collect();
    let (code, outcome) = lab.apply(1, &["--waves", "100%", "--timeout", "120s"]);
    assert_eq!(code, Some(0), "{outcome}\n{}", lab.logs());
    assert_eq!(devices(&outcome, "converged"), names(5..10));
    for i in 5..10 {
        assert!(lab.running(i).contains("west-only"));
    }
    for (i, before) in east_before.iter().enumerate() {
        assert_eq!(&lab.running(i), before, "h{} is not in the group", i + 1);
    }

    // Two hubs are off during the next rollout: the wave passes at 80%, they are named,
    // and they converge on their return.
    lab.stop_hub(8);
    lab.stop_hub(9);
    lab.write_base(&format!("{}{}", space("everywhere"), space("while-away")));
    let (code, outcome) = lab.apply(
        0,
        &[
            "--waves",
            "100%",
            "--min-healthy",
            "80%",
            "--timeout",
            "45s",
        ],
    );
    assert_eq!(code, Some(0), "{outcome}\n{}", lab.logs());
    assert_eq!(devices(&outcome, "failed"), names(8..10), "{outcome}");
    assert_eq!(devices(&outcome, "converged"), names(0..8));
    lab.start_hub(8);
    lab.start_hub(9);
    lab.wait_status_ok("the two hubs converge on their return", 120);

    // `fleet status` matches what each hub runs: its rendered config, the envelope it
    // applied, converged.
    let status = lab.status(0);
    for (i, h) in lab.hubs.iter().enumerate() {
        let line = &status[i];
        assert_eq!(line["device"], h.name.as_str());
        assert_eq!(line["in_step"], true, "{status}");
        assert_eq!(line["state"], "converged", "{status}");
        assert_eq!(lab.running(i).trim_end(), lab.render(&h.name), "{}", h.name);
        let own: serde_json::Value =
            serde_json::from_slice(&h.ctl(&["status", "--output", "json"]).stdout).unwrap();
        assert_eq!(
            own["admins"]["admin_generation"], line["applied"],
            "{}",
            h.name
        );
        assert_eq!(line["applied"], line["published"], "{status}");
    }

    // A change the canary refuses (it would leave it no way onto the network) stops the
    // rollout after the first wave: the nine others are untouched.
    lab.write_layer("groups/canary.toml", "[network]\npeers = []\n");
    lab.write_base(&format!(
        "{}{}{}",
        space("everywhere"),
        space("while-away"),
        space("never")
    ));
    let (code, outcome) = lab.apply(0, &["--waves", "1,100%", "--timeout", "60s"]);
    assert_eq!(code, Some(1), "{outcome}\n{}", lab.logs());
    assert_eq!(outcome["stopped_at"], 1, "{outcome}");
    let mut untouched: Vec<String> = outcome["untouched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    untouched.sort();
    assert_eq!(untouched, names(1..10));
    let reason = outcome["waves"][0]["devices"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("no way onto the network"), "{outcome}");
    for i in 0..10 {
        assert!(!lab.running(i).contains("never"), "h{} runs it", i + 1);
    }
    eventually(
        "fleet status shows the canary refused and nothing new for the others",
        30,
        || {
            let s = lab.status(0);
            s[0]["state"] == "refused" && (1..10).all(|i| s[i]["published"] == s[i]["applied"])
        },
        || lab.status(0).to_string(),
    );
}
