//! The TOML processors and groupers built through the config and run on
//! edge inputs: one transfer of a link from a `static` inlet through the
//! tables under test into a `collect` outlet. Non-finite floats, renames
//! that swap or chain, several indices of one array, numbers compared
//! across representations, escaped pointers, jq outputs and errors, and
//! `group_by` keys.

use databay::BuildContext;
use databay_core::testing::{CollectOutlet, StaticInlet};
use serde_json::{Value, json};

use crate::support::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

/// One transfer of a link built from TOML: a `static` inlet giving `inputs`,
/// the processor/grouper tables in `body`, a `collect` outlet. Returns the
/// batches pushed, or the config or transfer error as text.
async fn through(body: &str, inputs: Vec<Value>) -> Result<Vec<Vec<Value>>, String> {
    let mut registry = databay::builtins();
    let outlet = CollectOutlet::new();
    let handle = outlet.clone();
    registry.inlet(
        "static",
        "Test inlet.",
        "type = \"static\"\n",
        move |_: NoOptions, _: &BuildContext| Ok(StaticInlet::values(inputs.clone())),
    );
    registry.outlet(
        "collect",
        "Test outlet.",
        "type = \"collect\"\n",
        move |_: NoOptions, _: &BuildContext| Ok(handle.clone()),
    );
    let text = format!(
        "[[link]]\nname = \"p\"\nevery = \"1h\"\n[[link.inlet]]\ntype = \"static\"\n[[link.outlet]]\ntype = \"collect\"\n{body}"
    );
    let config = parse_with(&text, &registry, &env).map_err(|e| format!("config: {e}"))?;
    config.links[0]
        .link
        .transfer()
        .await
        .map_err(|e| format!("transfer: {e}"))?;
    Ok(outlet
        .batches()
        .into_iter()
        .map(|(_, batch)| batch.into_iter().map(|r| r.payload).collect())
        .collect())
}

async fn kept(body: &str, inputs: Vec<Value>) -> Vec<Value> {
    through(body, inputs)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

/// TOML's `nan` and `inf` have no JSON form: serde_json turns them into
/// `null`, so `value = nan` selects records whose field is missing or null,
/// `set` writes nulls, and `value = inf` is refused as "not null".
#[tokio::test]
async fn non_finite_toml_floats_are_config_errors() {
    for body in [
        "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nvalue = nan\n",
        "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"ne\"\nvalue = inf\n",
        "[[link.processor]]\ntype = \"set\"\nfields = { \"/x\" = -inf }\n",
    ] {
        let outcome = through(body, vec![json!({"a": 1}), json!({})]).await;
        let Err(e) = outcome else {
            panic!("{body:?} loaded and ran: {outcome:?}");
        };
        assert!(e.starts_with("config:") && !e.contains("not null"), "{e}");
    }
}

/// `rename` applies its pairs one after another in pointer order, so a swap
/// (`/a` <-> `/b`) or a shift (`/a` -> `/b` -> `/c`) overwrites a field that
/// is itself being moved: its value vanishes without an error.
#[tokio::test]
async fn rename_never_loses_a_value_it_was_told_to_move() {
    let swap = kept(
        "[[link.processor]]\ntype = \"rename\"\nfields = { \"/a\" = \"/b\", \"/b\" = \"/a\" }\n",
        vec![json!({"a": 1, "b": 2})],
    )
    .await;
    assert_eq!(swap, vec![json!({"a": 2, "b": 1})]);
    let chain = through(
        "[[link.processor]]\ntype = \"rename\"\nfields = { \"/a\" = \"/b\", \"/b\" = \"/c\" }\n",
        vec![json!({"a": 1, "b": 2})],
    )
    .await;
    // Either both move (b -> c first), or the config is refused.
    match chain {
        Ok(batches) => assert_eq!(batches, vec![vec![json!({"b": 1, "c": 2})]]),
        Err(e) => assert!(e.starts_with("config:"), "{e}"),
    }
}

/// `remove` deletes its pointers one after another, so after `/l/0` goes
/// the elements shift and `/l/1` deletes what was `/l/2`: the element the
/// config named survives and another one is dropped. jq's
/// `del(.l[0], .l[1])` deletes both named elements; `rename` from indices
/// of one array shifts the same way.
#[tokio::test]
async fn several_indices_of_one_array_mean_the_original_positions() {
    let remove = "[[link.processor]]\ntype = \"remove\"\nfields = [\"/l/0\", \"/l/1\"]\n";
    assert_eq!(
        kept(remove, vec![json!({"l": ["a", "b", "c"]})]).await,
        vec![json!({"l": ["c"]})]
    );
    let rename = "[[link.processor]]\ntype = \"rename\"\nfields = { \"/l/0\" = \"/first\", \"/l/1\" = \"/second\" }\n";
    assert_eq!(
        kept(rename, vec![json!({"l": ["a", "b", "c"]})]).await,
        vec![json!({"first": "a", "second": "b", "l": ["c"]})]
    );
}

#[tokio::test]
async fn select_compares_numbers_exactly_across_representations() {
    let inputs = vec![
        json!({"a": u64::MAX}),
        json!({"a": i64::MIN}),
        json!({"a": -1}),
        json!({"a": -1.0}),
        json!({"a": -0.5}),
        json!({"a": 9007199254740993u64}),
        json!({"a": "-1"}),
        json!({"a": [-1]}),
        json!({"a": {"-1": 1}}),
        json!({"a": null}),
        json!({}),
        json!([1]),
        json!("not an object"),
    ];
    let gt = |v: &str| {
        format!(
            "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"gt\"\nvalue = {v}\n"
        )
    };
    assert_eq!(
        kept(&gt("-1"), inputs.clone()).await,
        vec![
            json!({"a": u64::MAX}),
            json!({"a": -0.5}),
            json!({"a": 9007199254740993u64})
        ]
    );
    // 2^53 as a float is below 2^53 + 1 as an integer.
    assert_eq!(
        kept(&gt("9007199254740992.0"), inputs.clone()).await,
        vec![json!({"a": u64::MAX}), json!({"a": 9007199254740993u64})]
    );
    let eq = "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nvalue = -1\n";
    assert_eq!(
        kept(eq, inputs.clone()).await,
        vec![json!({"a": -1}), json!({"a": -1.0})]
    );
    let contains =
        "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"contains\"\nvalue = -1\n";
    assert_eq!(
        kept(contains, inputs.clone()).await,
        vec![json!({"a": [-1]})]
    );
    let contains_key = "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"contains\"\nvalue = \"-1\"\n";
    assert_eq!(
        kept(contains_key, inputs.clone()).await,
        vec![json!({"a": "-1"}), json!({"a": {"-1": 1}})]
    );
    // Non-object payloads simply have no `/a`.
    let missing = "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"missing\"\n";
    assert_eq!(
        kept(missing, inputs).await,
        vec![json!({}), json!([1]), json!("not an object")]
    );
}

#[tokio::test]
async fn escaped_and_array_pointers_in_set_remove_and_rename() {
    let set = "[[link.processor]]\ntype = \"set\"\nfields = { \"/a~1b\" = 1, \"/c~0d\" = 2, \"/items/-\" = 3, \"/~01\" = 4 }\n";
    assert_eq!(
        kept(set, vec![json!({"items": [0]})]).await,
        vec![json!({"a/b": 1, "c~d": 2, "items": [0, 3], "~1": 4})]
    );
    let remove = "[[link.processor]]\ntype = \"remove\"\nfields = [\"/a~1b\", \"/items/0\", \"/items/-\", \"/nope/x\"]\n";
    assert_eq!(
        kept(
            remove,
            vec![json!({"a/b": 1, "a": {"b": 2}, "items": [1, 2]})]
        )
        .await,
        vec![json!({"a": {"b": 2}, "items": [2]})]
    );
    let rename = "[[link.processor]]\ntype = \"rename\"\nfields = { \"/items/0\" = \"/first\", \"/x~1y\" = \"/x/y\" }\n";
    assert_eq!(
        kept(rename, vec![json!({"items": ["a", "b"], "x/y": 1})]).await,
        vec![json!({"first": "a", "items": ["b"], "x": {"y": 1}})]
    );
    // A payload that is not an object: set fails the batch naming the
    // record and the pointer; nothing is pushed.
    let e = through(
        "[[link.processor]]\ntype = \"set\"\nfields = { \"/a\" = 1 }\n",
        vec![json!({}), json!("text")],
    )
    .await
    .unwrap_err();
    assert!(e.contains("record 1 of 2") && e.contains("`/a`"), "{e}");
}

#[tokio::test]
async fn jq_map_outputs_errors_and_round_trips() {
    let map = |expr: &str| format!("[[link.processor]]\ntype = \"map\"\nexpr = '{expr}'\n");
    // Several outputs per record, in order; `empty` drops.
    assert_eq!(
        kept(&map(".[]"), vec![json!([1, 2]), json!([]), json!(["x"])]).await,
        vec![json!(1), json!(2), json!("x")]
    );
    assert_eq!(
        kept(&map("empty"), vec![json!(1)]).await,
        Vec::<Value>::new()
    );
    // Extreme numbers and unicode survive the trip through jaq unchanged.
    let payload = json!({
        "u": u64::MAX, "i": i64::MIN, "f": 1e300, "tiny": 5e-324, "neg0": -0.0,
        "s": "é😀\u{10FFFF}\u{0}\u{202e}", "k\u{1F600}": [{"\"": "\\"}]
    });
    assert_eq!(kept(&map("."), vec![payload.clone()]).await, vec![payload]);
    // A runtime error names the record and the expression.
    let e = through(&map(".a + 1"), vec![json!({"a": 1}), json!({"a": "x"})])
        .await
        .unwrap_err();
    assert!(e.contains("record 1 of 2") && e.contains("`.a + 1`"), "{e}");
    let e = through(&map("halt_error"), vec![json!("bye")])
        .await
        .unwrap_err();
    assert!(e.contains("record 0 of 1"), "{e}");
}

#[tokio::test]
async fn group_by_keeps_float_and_integer_keys_apart_and_chunk_of_one() {
    let group = "[[link.grouper]]\ntype = \"group_by\"\npointer = \"/k\"\n";
    let batches = through(
        group,
        vec![
            json!({"k": 1}),
            json!({"k": 1.0}),
            json!({"k": 1}),
            json!({"k": 1.5}),
            json!({"k": {"b": 1, "a": 2}}),
            json!({"k": {"a": 2, "b": 1}}),
        ],
    )
    .await
    .unwrap();
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 1, 1, 2]);
    let chunk = "[[link.grouper]]\ntype = \"chunk\"\nsize = 1\n";
    let batches = through(chunk, vec![json!(1), json!(2), json!(3)])
        .await
        .unwrap();
    assert_eq!(
        batches,
        vec![vec![json!(1)], vec![json!(2)], vec![json!(3)]]
    );
}
