//! The Prometheus text exposition format, as far as `endpoint_metrics`
//! reads it (Go parses it with `expfmt.TextParser`): `# HELP` / `# TYPE`
//! lines and samples `name{label="value",...} value [timestamp_ms]`.
//! Malformed input is an error naming the line, as in Go, where one bad
//! host's metrics make the whole pick fall back.
use std::collections::BTreeMap;

/// A metric family's type (`# TYPE`); `Untyped` without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `summary`
    Summary,
    /// `untyped` or no `# TYPE` line
    Untyped,
}

/// One series of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels, in order.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
    /// Its timestamp in ms; 0 without one (Go's `GetTimestampMs`).
    pub timestamp_ms: i64,
}

/// A metric family: its type and series.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// From `# TYPE`.
    pub kind: Kind,
    /// The series, in the order given.
    pub samples: Vec<Sample>,
}

impl Family {
    /// Go's `GetGauge().GetValue()` of a series: its value in a gauge
    /// family, 0 in a family of any other type.
    pub fn gauge_value(&self, sample: &Sample) -> f64 {
        if self.kind == Kind::Gauge {
            sample.value
        } else {
            0.0
        }
    }
}

/// Parses the text into families by name (families without a sample are
/// left out, as `expfmt` does).
pub fn parse(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut typed: BTreeMap<String, bool> = BTreeMap::new();
    let mut helped: BTreeMap<String, ()> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = |what: String| format!("text format parsing error in line {}: {what}", n + 1);
        let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            match words.next() {
                Some("TYPE") => {
                    let name = words
                        .next()
                        .ok_or_else(|| at("TYPE without a metric name".into()))?;
                    check_name(name).map_err(&at)?;
                    let kind = match words.next() {
                        Some("counter") => Kind::Counter,
                        Some("gauge") => Kind::Gauge,
                        Some("histogram") => Kind::Histogram,
                        Some("summary") => Kind::Summary,
                        Some("untyped") => Kind::Untyped,
                        other => {
                            return Err(at(format!(
                                "unknown metric type {:?}",
                                other.unwrap_or("")
                            )))
                        }
                    };
                    if typed.insert(name.to_owned(), true).is_some() || families.contains_key(name)
                    {
                        return Err(at(format!(
                            "second TYPE line for metric name {name:?}, or TYPE reported after samples"
                        )));
                    }
                    families.insert(
                        name.to_owned(),
                        Family {
                            kind,
                            samples: Vec::new(),
                        },
                    );
                }
                Some("HELP") => {
                    let name = words
                        .next()
                        .ok_or_else(|| at("HELP without a metric name".into()))?;
                    check_name(name).map_err(&at)?;
                    if helped.insert(name.to_owned(), ()).is_some() {
                        return Err(at(format!("second HELP line for metric name {name:?}")));
                    }
                }
                _ => {} // another comment
            }
            continue;
        }
        let (name, sample) = parse_sample(line).map_err(&at)?;
        let family = family_of(&families, &name);
        families
            .entry(family)
            .or_insert_with(|| Family {
                kind: Kind::Untyped,
                samples: Vec::new(),
            })
            .samples
            .push(sample);
    }
    families.retain(|_, f| !f.samples.is_empty());
    Ok(families)
}

/// `x_bucket` / `x_sum` / `x_count` belong to family `x` when `x` is a
/// histogram or summary.
fn family_of(families: &BTreeMap<String, Family>, name: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some(f) = families.get(base) {
                let fits = match suffix {
                    "_bucket" => f.kind == Kind::Histogram,
                    _ => matches!(f.kind, Kind::Histogram | Kind::Summary),
                };
                if fits {
                    return base.to_owned();
                }
            }
        }
    }
    name.to_owned()
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

fn parse_sample(line: &str) -> Result<(String, Sample), String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    check_name(name)?;
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let end;
        loop {
            while chars.next_if(|(_, c)| *c == ' ' || *c == ',').is_some() {}
            match chars.peek() {
                Some((i, '}')) => {
                    end = *i + 1;
                    break;
                }
                None => return Err("unterminated label set".into()),
                Some(_) => {}
            }
            let mut label = String::new();
            while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && *c != ' ') {
                label.push(c);
            }
            check_name(&label).map_err(|_| format!("invalid label name {label:?}"))?;
            while chars.next_if(|(_, c)| *c == ' ').is_some() {}
            if chars.next().map(|(_, c)| c) != Some('=') {
                return Err(format!("expected '=' after label name {label:?}"));
            }
            while chars.next_if(|(_, c)| *c == ' ').is_some() {}
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!(
                    "expected '\"' to start the value of label {label:?}"
                ));
            }
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('"') => break,
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        other => {
                            return Err(format!("invalid escape {other:?} in label {label:?}"))
                        }
                    },
                    Some(c) => value.push(c),
                    None => return Err(format!("unterminated value of label {label:?}")),
                }
            }
            if labels.iter().any(|(l, _): &(String, String)| *l == label) {
                return Err(format!("duplicate label name {label:?}"));
            }
            labels.push((label, value));
        }
        rest = inner.get(end..).unwrap_or("");
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("no value for metric {name:?}"))?;
    let value = parse_value(value).ok_or_else(|| format!("invalid value {value:?}"))?;
    let timestamp_ms = match fields.next() {
        None => 0,
        Some(t) => t
            .parse::<i64>()
            .map_err(|_| format!("invalid timestamp {t:?}"))?,
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the value"));
    }
    Ok((
        name.to_owned(),
        Sample {
            labels,
            value,
            timestamp_ms,
        },
    ))
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn families_types_labels_and_errors() {
        let text = "# HELP vllm:num_requests_waiting Waiting.\n\
                    # TYPE vllm:num_requests_waiting gauge\n\
                    vllm:num_requests_waiting{model_name=\"m\"} 3 1700\n\
                    untyped_one 2\n\
                    # TYPE lat histogram\n\
                    lat_bucket{le=\"+Inf\"} 4\n\
                    lat_count 4\n\
                    # TYPE empty gauge\n\
                    info{a=\"x,y\",b=\"q\\\"\"} 1.5e0\n";
        let f = parse(text).unwrap_or_default();
        let waiting = &f["vllm:num_requests_waiting"];
        assert_eq!(waiting.kind, Kind::Gauge);
        assert_eq!(waiting.samples[0].value, 3.0);
        assert_eq!(waiting.samples[0].timestamp_ms, 1700);
        assert_eq!(
            waiting.samples[0].labels,
            [("model_name".to_owned(), "m".to_owned())]
        );
        assert_eq!(f["untyped_one"].kind, Kind::Untyped);
        assert_eq!(
            f["untyped_one"].gauge_value(&f["untyped_one"].samples[0]),
            0.0
        );
        assert_eq!(f["lat"].samples.len(), 2);
        assert!(
            !f.contains_key("empty"),
            "a family without samples is dropped"
        );
        assert_eq!(f["info"].samples[0].labels[1].1, "q\"");
        for bad in [
            "x{a=\"1\"",
            "x abc",
            "1x 2",
            "# TYPE x gauge\n# TYPE x gauge",
            "x 1\n# TYPE x gauge",
            "# TYPE x thing",
            "x{a=\"1\",a=\"2\"} 1",
            "x 1 2 3",
        ] {
            let err = parse(bad).err().unwrap_or_default();
            assert!(err.contains("line"), "{bad:?}: {err:?}");
        }
    }
}
