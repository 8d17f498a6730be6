//! The comparison as an SVG picture: one panel per figure, a bar per
//! system, no dependencies (a few rectangles and labels).

use std::fmt::Write;

/// One panel: a title, the unit, and each system's value.
pub(crate) struct Panel {
    pub(crate) title: String,
    pub(crate) better: &'static str,
    pub(crate) values: Vec<(String, f64)>,
}

const WIDTH: f64 = 260.0;
const HEIGHT: f64 = 240.0;
const COLORS: [&str; 4] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// All panels side by side, with a caption line under them.
pub(crate) fn svg(panels: &[Panel], caption: &str) -> String {
    let total = WIDTH * panels.len() as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{h}" font-family="sans-serif" font-size="11">"#,
        h = HEIGHT + 30.0
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (p, panel) in panels.iter().enumerate() {
        let x0 = p as f64 * WIDTH;
        let max = panel.values.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
        let _ = writeln!(
            out,
            r#"<text x="{}" y="16" text-anchor="middle" font-weight="bold">{}</text>"#,
            x0 + WIDTH / 2.0,
            escape(&panel.title)
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="30" text-anchor="middle" fill="#555">{}</text>"##,
            x0 + WIDTH / 2.0,
            escape(panel.better)
        );
        let plot_top = 45.0;
        let plot_h = HEIGHT - plot_top - 30.0;
        let bar_w = (WIDTH - 60.0) / panel.values.len().max(1) as f64;
        for (i, (name, value)) in panel.values.iter().enumerate() {
            let h = plot_h * value / max;
            let x = x0 + 30.0 + i as f64 * bar_w;
            let y = plot_top + plot_h - h;
            let _ = writeln!(
                out,
                r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{}"/>"##,
                x + 8.0,
                bar_w - 16.0,
                COLORS[i % COLORS.len()]
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar_w / 2.0,
                y - 4.0,
                escape(&format_value(*value))
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar_w / 2.0,
                plot_top + plot_h + 14.0,
                escape(name)
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<text x="8" y="{}" fill="#555">{}</text>"##,
        HEIGHT + 20.0,
        escape(caption)
    );
    out.push_str("</svg>\n");
    out
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_bar_per_system_and_escapes_names() {
        let panels = [Panel {
            title: "ingest".into(),
            better: "msgs/s, higher is better",
            values: vec![("a<b".into(), 10.0), ("c".into(), 20.0)],
        }];
        let svg = svg(&panels, "caption");
        assert_eq!(svg.matches("<rect x=").count(), 2);
        assert!(svg.contains("a&lt;b") && svg.ends_with("</svg>\n"));
    }
}
