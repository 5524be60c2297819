//! The result of one run: an ordered set of fields printed as one JSON line, a human-readable
//! line, whether the run failed its checks, and warnings (a run that warns still passes).

use crate::stats::Histogram;

#[derive(Debug, Default)]
pub(crate) struct Report {
    fields: Vec<(String, String)>,
    pub(crate) human: String,
    pub(crate) failures: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Nanoseconds as microseconds with one decimal, for the human line.
pub(crate) fn micros(ns: u64) -> String {
    format!("{:.1}us", ns as f64 / 1000.0)
}

impl Report {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn int(&mut self, key: &str, value: u64) {
        self.fields.push((key.to_owned(), value.to_string()));
    }

    pub(crate) fn num(&mut self, key: &str, value: f64) {
        let text = if value.is_finite() {
            format!("{value:.3}")
        } else {
            "null".to_owned()
        };
        self.fields.push((key.to_owned(), text));
    }

    /// Latency quantiles in microseconds.
    pub(crate) fn latency(&mut self, h: &Histogram) {
        self.int("latency_samples", h.total);
        self.num("p50_us", h.quantile(0.5) as f64 / 1000.0);
        self.num("p99_us", h.quantile(0.99) as f64 / 1000.0);
        self.num("p999_us", h.quantile(0.999) as f64 / 1000.0);
        self.num("max_us", h.max() as f64 / 1000.0);
        self.num("mean_us", h.mean() as f64 / 1000.0);
    }

    pub(crate) fn fail(&mut self, why: String) {
        self.failures.push(why);
    }

    pub(crate) fn warn(&mut self, why: String) {
        self.warnings.push(why);
    }

    /// Puts `fields` first (scenario, transport, label...).
    pub(crate) fn prepend(&mut self, fields: Vec<(String, String)>) {
        let rest = std::mem::take(&mut self.fields);
        self.fields = fields;
        self.fields.extend(rest);
    }

    pub(crate) fn quoted(value: &str) -> String {
        json_string(value)
    }

    pub(crate) fn json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_string(k));
            out.push(':');
            out.push_str(v);
        }
        if !self.fields.is_empty() {
            out.push(',');
        }
        out.push_str("\"ok\":");
        out.push_str(if self.failures.is_empty() {
            "true"
        } else {
            "false"
        });
        if !self.failures.is_empty() {
            out.push_str(",\"failures\":");
            out.push_str(&json_string(&self.failures.join("; ")));
        }
        if !self.warnings.is_empty() {
            out.push_str(",\"warnings\":");
            out.push_str(&json_string(&self.warnings.join("; ")));
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line() {
        let mut r = Report::new();
        r.prepend(vec![("a".into(), Report::quoted("x\"y"))]);
        r.int("n", 3);
        r.fail("bad".into());
        assert_eq!(
            r.json(),
            r#"{"a":"x\"y","n":3,"ok":false,"failures":"bad"}"#
        );
    }
}
