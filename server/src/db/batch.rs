//! Statements over many rows at once (`values (..), (..)` and `in (..)` lists).
//!
//! The connection caches each statement it prepares by its text, so the lists come in a few sizes
//! only: a list is cut into pieces whose lengths are powers of two, and each size of piece is one
//! cached statement however the lists it serves vary.

/// `items` in pieces of at most `most` (a power of two), each a power of two long: 13 items are
/// 8, 4 and 1.
pub fn pieces<T>(items: &[T], most: usize) -> impl Iterator<Item = &[T]> {
    debug_assert!(most.is_power_of_two());
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = rest.len().min(most);
        // The largest power of two not above `len`.
        let take = 1 << (usize::BITS - 1 - len.leading_zeros());
        let (piece, after) = rest.split_at(take);
        rest = after;
        Some(piece)
    })
}

/// `rows` tuples of `columns` numbered placeholders, from `$1`: `($1, $2), ($3, $4)`.
pub fn tuples(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * columns + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_powers_of_two_in_order_and_cover_everything() {
        let items: Vec<u32> = (0..13).collect();
        let lengths: Vec<usize> = pieces(&items, 64).map(<[u32]>::len).collect();
        assert_eq!(lengths, [8, 4, 1]);
        let joined: Vec<u32> = pieces(&items, 64).flatten().copied().collect();
        assert_eq!(joined, items);
        let many: Vec<u32> = (0..300).collect();
        let lengths: Vec<usize> = pieces(&many, 128).map(<[u32]>::len).collect();
        assert_eq!(lengths, [128, 128, 32, 8, 4]);
        assert_eq!(pieces::<u32>(&[], 8).count(), 0);
    }

    #[test]
    fn tuples_number_the_placeholders_row_by_row() {
        assert_eq!(tuples(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(tuples(1, 1), "($1)");
    }
}
