//! Property tests over `metrics.jsonl`, the file electra-train reads back (`electra plot`, a
//! resumed run). Arbitrary bytes must give `Ok` or an `Err`, never a panic. Fixed, small case
//! counts (`PROPTEST_CASES` overrides them). The run directory's other files (configs,
//! checkpoints) are covered in electra-run's `fuzzed_readers`.

use proptest::prelude::*;

use electra_fs::testing::cases as config;

use crate::metrics::{self, MetricsLog};

proptest! {
    #![proptest_config(config(96))]

    /// `metrics.jsonl`: any bytes, read by `electra plot` and reopened by a resumed run.
    #[test]
    fn metrics_files_never_panic(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(
                prop_oneof![
                    Just("{\"step\": 1, \"loss\": 2.5}".to_string()),
                    Just("{\"step\": null}".to_string()),
                    Just("{\"step\": \"1\"}".to_string()),
                    Just("{\"loss\": 1e999}".to_string()),
                    Just("[]".to_string()),
                    Just("{".to_string()),
                    "\\PC{0,12}",
                ],
                0..8,
            )
            .prop_map(|lines| lines.join("\n").into_bytes()),
        ],
        keep_through in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, &bytes).expect("write");
        if let Ok(records) = metrics::read(&path) {
            let _ = metrics::plot(&records, &dir.path().join("curves.svg"));
        }
        let _ = MetricsLog::open(&path, keep_through);
    }
}
