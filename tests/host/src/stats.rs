//! The statistics both benchmarks report, so their figures mean the same thing.

/// The middle value (the mean of the two middle ones for an even count); NaN if there is none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A ratio of two modes measured in the same rounds: each round's ratio pairs the two modes'
/// samples of that round, so slow drifts in machine speed cancel; a forward round and the
/// reversed one after it are combined (geometric mean), so a drift within a round cancels too.
/// Returns the median over those pairs and the range of the per-round ratios.
pub fn paired_ratio(top: &[f64], bottom: &[f64]) -> Option<(f64, f64, f64)> {
    if top.is_empty() || bottom.is_empty() {
        return None;
    }
    let per_round: Vec<f64> = top.iter().zip(bottom).map(|(t, b)| t / b).collect();
    let low = per_round.iter().copied().fold(f64::INFINITY, f64::min);
    let high = per_round.iter().copied().fold(0.0, f64::max);
    let value = median(
        per_round
            .chunks(2)
            .map(|pair| pair.iter().product::<f64>().powf(1.0 / pair.len() as f64))
            .collect(),
    );
    Some((value, low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn paired_ratio_cancels_an_alternating_drift() {
        // The top mode runs first in even rounds and second in odd ones, and the machine slows
        // down within each round: per-round ratios alternate around 1.0, and the pairs cancel.
        let top = [110.0, 90.0, 110.0, 90.0];
        let bottom = [100.0, 100.0, 100.0, 100.0];
        let (value, low, high) = paired_ratio(&top, &bottom).unwrap();
        assert!((value - (1.1f64 * 0.9).sqrt()).abs() < 1e-9);
        assert_eq!((low, high), (0.9, 1.1));
        assert_eq!(paired_ratio(&[], &bottom), None);
    }
}
