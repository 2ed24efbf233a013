//! Reading a value off `/metrics`: every test that checks what an operator would see on
//! a dashboard parses the Prometheus text the same way, here.

/// The value of `series` in Prometheus text (`/metrics`), if it is there. `series` is a
/// metric name (`earshot_active_streams`) or a name with its labels as the exporter
/// writes them (`earshot_asr_stream_cost{model="base"}`); it must match a line's whole
/// series, so `earshot_active_streams` does not find `earshot_active_streams_peak`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::metric;

    const TEXT: &str = "# TYPE earshot_active_streams gauge\n\
                        earshot_active_streams_peak 7\n\
                        earshot_active_streams 2\n\
                        earshot_asr_stream_cost{model=\"base\"} 0.25\n\
                        earshot_requests_total 12 1700000000000\n";

    #[test]
    fn finds_the_whole_series_only() {
        assert_eq!(metric(TEXT, "earshot_active_streams"), Some(2.0));
        assert_eq!(metric(TEXT, "earshot_active"), None);
        assert_eq!(
            metric(TEXT, "earshot_asr_stream_cost{model=\"base\"}"),
            Some(0.25)
        );
        assert_eq!(metric(TEXT, "earshot_asr_stream_cost"), None);
    }

    #[test]
    fn reads_the_value_not_a_timestamp() {
        assert_eq!(metric(TEXT, "earshot_requests_total"), Some(12.0));
    }
}
