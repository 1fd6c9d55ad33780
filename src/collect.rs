//! Collecting fallible items into vectors of exactly their length.
//!
//! `collect::<Result<Vec<_>, _>>()` cannot see its input's length (the
//! adapter that stops at the first error hides it) and so starts with room
//! for four elements: a validator's one partial signature per statement
//! took 768 bytes instead of 192, 4 × 65,536 times over, in round 4 and in
//! `dvkg verify`.

/// The items of `items` in order, or its first error; the vector holds
/// exactly as many as `items` yields.
///
/// # Errors
///
/// The first item that is an error.
pub fn try_collect_exact<T, E>(
    items: impl ExactSizeIterator<Item = Result<T, E>>,
) -> Result<Vec<T>, E> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(item?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::try_collect_exact;

    #[test]
    fn collects_exactly_or_stops_at_the_first_error() {
        let rows: Result<Vec<u8>, &str> = try_collect_exact([Ok(1), Ok(2)].into_iter());
        let rows = rows.unwrap();
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(rows.capacity(), 2);
        let one: Vec<u64> = try_collect_exact([Ok::<_, ()>(7)].into_iter()).unwrap();
        assert_eq!(one.capacity(), 1);
        // What it replaces starts at four.
        let usual: Vec<u64> = [Ok::<_, ()>(7)]
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(usual.capacity() > 1);
        let failed = try_collect_exact([Ok(1), Err("second"), Err("third")].into_iter());
        assert_eq!(failed, Err("second"));
    }
}
