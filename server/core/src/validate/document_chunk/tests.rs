//! Measuring real and forged document chunks.

use std::io::Write;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc};

use super::*;

const CAPS: Caps = Caps {
    bytes: 1 << 20,
    changes: 1_000,
    ops: 100_000,
};

fn uleb(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A document chunk with no actors or heads and one operation column.
fn chunk_with_op_column(spec: u32, data: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0, 0, 1];
    uleb(u64::from(spec), &mut body);
    uleb(data.len() as u64, &mut body);
    body.extend_from_slice(data);
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 0];
    uleb(body.len() as u64, &mut chunk);
    chunk.extend(body);
    chunk
}

#[test]
fn a_real_document_is_measured_as_automerge_counts_it() {
    let mut doc = AutoCommit::new();
    for i in 0..40_i64 {
        doc.put(automerge::ROOT, format!("k{}", i % 7), i).unwrap();
        let list = doc
            .put_object(automerge::ROOT, format!("l{i}"), automerge::ObjType::List)
            .unwrap();
        doc.insert(&list, 0, "x".repeat(300)).unwrap();
        doc.commit();
    }
    let bytes = doc.save();
    let m = measure(&bytes, CAPS).unwrap();
    let stats = doc.document().stats();
    assert_eq!(m.ops, stats.num_ops);
    assert_eq!(m.changes, stats.num_changes);
    assert!(m.bytes >= 40 * 300, "{m:?}");
}

#[test]
fn a_billion_operations_in_six_bytes_are_refused() {
    // One run: 1,000,000,000 times action 1.
    let mut rle = Vec::new();
    uleb(1_000_000_000, &mut rle);
    rle.push(1);
    let chunk = chunk_with_op_column(OP_ACTION, &rle);
    let err = measure(&chunk, CAPS).unwrap_err();
    assert!(err.contains("operations"), "{err}");
}

#[test]
fn a_column_that_inflates_past_the_cap_is_refused_before_it_is_inflated_whole() {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0_u8; 64 << 20]).unwrap();
    let deflated = z.finish().unwrap();
    assert!(deflated.len() < 128 << 10);
    let chunk = chunk_with_op_column(0x57 | DEFLATE, &deflated);
    let err = measure(&chunk, CAPS).unwrap_err();
    assert!(err.contains("inflate to more than"), "{err}");
}

#[test]
fn truncated_and_garbage_chunks_are_errors_not_panics() {
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "a", 1).unwrap();
    let bytes = doc.save();
    for n in 0..bytes.len() {
        let _ = measure(&bytes[..n], CAPS);
    }
    let _ = measure(
        &[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff],
        CAPS,
    );
}
