//! Keeps a damaged Parquet file an error, never a panic, in both Parquet readers here (corpus
//! files and shards).
//!
//! The `parquet` crate (60.1) panics on some damaged files instead of returning an error:
//! - it decodes a footer without checking that each column chunk's byte range
//!   (`dictionary_page_offset` or else `data_page_offset`, for `total_compressed_size` bytes)
//!   lies inside the file, and *asserts* it is non-negative when a row group is read
//!   (`ColumnChunkMetaData::byte_range`): [`check_chunk_ranges`] runs first and names the row
//!   group and column;
//! - its page decoders assert on some damaged page contents (a flipped bit in a page header
//!   or in the definition levels reaches `arrow-buffer`'s "offset + len out of bounds"; the
//!   arrow-rs tracker has several such reports). [`decode`] runs each decoding step and turns
//!   such a panic into an error. The reader it panicked in is then dropped, never reused.
//!
//! Tested by electra-data's `every_byte_flip_of_a_parquet_corpus_is_read_or_refused` (all
//! single-byte changes of a small file) and the damaged-file properties next to it.

use std::panic::{AssertUnwindSafe, catch_unwind};

use parquet::file::metadata::ParquetMetaData;

/// Runs one decoding step of the `parquet` crate; a panic inside it becomes `Err` with the
/// panic's message. (The panic hook still prints that message to stderr.)
pub(crate) fn decode<T>(step: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(step)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        format!("damaged data: the Parquet decoder failed ({message})")
    })
}

/// `Err` with a message when a column chunk's byte range is negative or runs past
/// `file_len` bytes.
pub(crate) fn check_chunk_ranges(metadata: &ParquetMetaData, file_len: u64) -> Result<(), String> {
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for (c, column) in group.columns().iter().enumerate() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let len = column.compressed_size();
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(format!(
                    "damaged footer: row group {g}, column {c} (`{}`) claims bytes {start}..+{len} \
                     of a {file_len}-byte file",
                    column.column_path().string()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parquet::file::metadata::{
        ColumnChunkMetaData, FileMetaData, ParquetMetaData, RowGroupMetaData,
    };
    use parquet::schema::parser::parse_message_type;
    use parquet::schema::types::SchemaDescriptor;

    use super::check_chunk_ranges;

    fn footer(dictionary: Option<i64>, data: i64, len: i64) -> ParquetMetaData {
        let schema = parse_message_type("message m { required binary text (UTF8); }")
            .expect("a valid schema");
        let descr = Arc::new(SchemaDescriptor::new(Arc::new(schema)));
        let column = ColumnChunkMetaData::builder(descr.column(0))
            .set_dictionary_page_offset(dictionary)
            .set_data_page_offset(data)
            .set_total_compressed_size(len)
            .build()
            .expect("column chunk");
        let group = RowGroupMetaData::builder(descr.clone())
            .set_num_rows(1)
            .set_column_metadata(vec![column])
            .build()
            .expect("row group");
        let file = FileMetaData::new(1, 1, None, None, descr, None);
        ParquetMetaData::new(file, vec![group])
    }

    #[test]
    fn a_panicking_step_becomes_an_error_with_its_message() {
        assert_eq!(super::decode(|| 7), Ok(7));
        let err =
            super::decode(|| -> u8 { panic!("offset + len out of bounds") }).expect_err("caught");
        assert!(err.contains("offset + len out of bounds"), "{err}");
    }

    #[test]
    fn a_chunk_inside_the_file_passes() {
        assert_eq!(check_chunk_ranges(&footer(None, 4, 96), 100), Ok(()));
        assert_eq!(check_chunk_ranges(&footer(Some(4), 50, 96), 100), Ok(()));
    }

    #[test]
    fn a_negative_offset_or_length_is_refused_by_row_group_and_column() {
        for (dictionary, data, len) in [(None, -3, 10), (Some(-1), 4, 10), (None, 4, -10)] {
            let err = check_chunk_ranges(&footer(dictionary, data, len), 100)
                .expect_err("negative range");
            assert!(err.contains("row group 0, column 0 (`text`)"), "{err}");
        }
    }

    #[test]
    fn a_chunk_running_past_the_end_is_refused() {
        let err = check_chunk_ranges(&footer(None, 60, 41), 100).expect_err("past the end");
        assert!(err.contains("100-byte file"), "{err}");
        let overflow = check_chunk_ranges(&footer(None, i64::MAX, i64::MAX), 100);
        assert!(overflow.is_err(), "an overflowing end is refused");
    }
}
