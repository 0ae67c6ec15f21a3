//! Bar charts as inline SVG, rendered on the server: nothing to load, works offline, and the
//! numbers are in the DOM for tests (`rect.bar` with `data-value` and a key attribute).

use crate::text::escape;
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 34.0;

/// One bar: `key` goes into the `data-{key_name}` attribute, `label` under the axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub key: String,
    pub label: String,
    pub value: u64,
}

/// `<figure id="{id}">` with a title and an SVG of `bars`; `key_name` names the data attribute
/// that identifies each bar (`day`, `bucket`), `unit` the value in tooltips ("sessions"). A chart
/// with no bar above zero says why it is blank: `why_blank`, in `text.empty`.
pub fn bar_chart(
    id: &str,
    title: &str,
    key_name: &str,
    unit: &str,
    bars: &[Bar],
    why_blank: &str,
) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure class=\"chart\" id=\"{id}\"><figcaption>{title}</figcaption>\
<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
aria-label=\"{title}\">",
        id = escape(id),
        title = escape(title),
    );
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let baseline = TOP + plot_height;
    let max = bars.iter().map(|bar| bar.value).max().unwrap_or(0);
    // A round top for the axis: 1, 2, 5, 10, 20, 50, ...
    let top = nice_ceiling(max.max(1));
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{baseline}\" x2=\"{x2}\" y2=\"{baseline}\"/>\
<line class=\"grid\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{x2}\" y2=\"{TOP}\"/>\
<text class=\"tick\" x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{top}</text>\
<text class=\"tick\" x=\"{tx}\" y=\"{by}\" text-anchor=\"end\">0</text>",
        x2 = WIDTH - RIGHT,
        tx = LEFT - 6.0,
        ty = TOP + 4.0,
        by = baseline + 4.0,
    );
    if max == 0 {
        let _ = write!(
            svg,
            "<text class=\"empty\" x=\"{x}\" y=\"{y}\" text-anchor=\"middle\">{why}</text>",
            x = LEFT + plot_width / 2.0,
            y = TOP + plot_height / 2.0,
            why = escape(why_blank),
        );
    }
    let slot = plot_width / bars.len().max(1) as f64;
    // Few bars stay bar-shaped instead of filling the plot.
    let bar_width = (slot * 0.78).clamp(1.0, 64.0);
    // Label every bar when they fit, otherwise every n-th one (always the last).
    let label_every = (bars.len() as f64 / 12.0).ceil().max(1.0) as usize;
    for (index, bar) in bars.iter().enumerate() {
        let height = plot_height * bar.value as f64 / top as f64;
        let x = LEFT + slot * index as f64 + (slot - bar_width) / 2.0;
        let y = baseline - height;
        let _ = write!(
            svg,
            "<rect class=\"bar\" data-{key_name}=\"{key}\" data-value=\"{value}\" x=\"{x:.1}\" \
y=\"{y:.1}\" width=\"{bar_width:.1}\" height=\"{height:.1}\"><title>{label}: {value} {unit}</title></rect>",
            key = escape(&bar.key),
            label = escape(&bar.label),
            value = bar.value,
            unit = escape(unit),
        );
        let center = x + bar_width / 2.0;
        // The value above the bar, where its digits fit in the bar's slot.
        if bar.value > 0 && slot >= 7.0 * (bar.value.to_string().len() as f64 + 1.0) {
            let _ = write!(
                svg,
                "<text class=\"value\" x=\"{center:.1}\" y=\"{vy:.1}\" text-anchor=\"middle\">{value}</text>",
                vy = y - 4.0,
                value = bar.value,
            );
        }
        if index % label_every == 0 || index + 1 == bars.len() {
            let _ = write!(
                svg,
                "<text class=\"label\" x=\"{center:.1}\" y=\"{ly}\" text-anchor=\"middle\">{label}</text>",
                ly = baseline + 16.0,
                label = escape(&bar.label),
            );
        }
    }
    svg.push_str("</svg></figure>");
    svg
}

fn nice_ceiling(value: u64) -> u64 {
    let mut magnitude = 1;
    loop {
        for step in [1, 2, 5] {
            if step * magnitude >= value {
                return step * magnitude;
            }
        }
        magnitude *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(key: &str, value: u64) -> Bar {
        Bar {
            key: key.into(),
            label: key.into(),
            value,
        }
    }

    #[test]
    fn one_rect_per_bar_with_its_key_and_value() {
        let svg = bar_chart(
            "c",
            "Sessions",
            "day",
            "sessions",
            &[
                bar("2025-11-26", 2),
                bar("2025-11-27", 0),
                bar("2025-11-28", 5),
            ],
            "none",
        );
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 3);
        assert!(svg.contains("data-day=\"2025-11-26\" data-value=\"2\""));
        assert!(svg.contains("data-day=\"2025-11-27\" data-value=\"0\""));
        // The tallest bar fills the plot up to the axis top (5).
        assert!(svg.contains("height=\"168.0\"><title>2025-11-28: 5 sessions</title>"));
        assert!(svg.contains("height=\"0.0\""));
    }

    #[test]
    fn an_empty_chart_says_so_and_labels_are_escaped() {
        assert!(bar_chart("c", "T", "day", "x", &[], "No data yet").contains("No data yet"));
        // Bars that are all zero are blank too, and say why.
        let zeros = bar_chart(
            "c",
            "T",
            "bucket",
            "x",
            &[bar("a", 0)],
            "No session has ended",
        );
        assert!(zeros.contains("<text class=\"empty\"") && zeros.contains("No session has ended"));
        let svg = bar_chart("c", "<T>", "bucket", "x", &[bar("<b>", 1)], "<none>");
        assert!(!svg.contains("class=\"empty\""));
        assert!(!svg.contains("<b>") && !svg.contains("<T>"));
        assert!(svg.contains("data-bucket=\"&lt;b&gt;\""));
    }

    #[test]
    fn the_axis_top_is_a_round_number() {
        assert_eq!(
            [1, 2, 3, 7, 10, 11, 99, 101].map(nice_ceiling),
            [1, 2, 5, 10, 10, 20, 100, 200]
        );
    }
}
