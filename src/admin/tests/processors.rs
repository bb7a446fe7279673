//! `/metrics` shows what stateful processors hold, as `/links` does.

use databay_core::stateful::{self, key_text};
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{Link, Planner, Record};
use serde_json::json;

use super::{check_exposition, metrics_text, sample};

fn by_user(r: &Record) -> Result<String, String> {
    key_text(r.payload.get("user"))
}

#[tokio::test]
async fn metrics_show_the_state_of_stateful_processors() {
    let link = Link::builder("counts")
        .inlet(StaticInlet::values([
            json!({"user": "a"}),
            json!({"user": "b"}),
            json!({"other": 1}),
        ]))
        .named_processor("per_user", stateful::count_final(by_user))
        .outlet(CollectOutlet::new())
        .every(std::time::Duration::from_secs(60))
        .build()
        .expect("link");
    let planner = Planner::new([link]).expect("planner");
    let l = planner.link("counts").expect("link");
    l.transfer().await.expect("transfer");
    l.transfer().await.expect("transfer");

    let text = metrics_text(&planner, false);
    check_exposition(&text);
    let labels = "{link=\"counts\",index=\"0\",processor=\"per_user\"}";
    assert!(
        text.contains("# TYPE databay_processor_keys gauge\n"),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("databay_processor_keys{labels}")),
        2.0
    );
    assert!(text.contains("# TYPE databay_processor_rejected_records counter\n"));
    assert_eq!(
        sample(
            &text,
            &format!("databay_processor_rejected_records_total{labels}")
        ),
        2.0,
        "one record without a key per transfer"
    );

    l.flush().await.expect("flush");
    let text = metrics_text(&planner, false);
    assert_eq!(
        sample(&text, &format!("databay_processor_keys{labels}")),
        0.0
    );
}
