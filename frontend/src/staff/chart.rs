//! The chart of unlocks per day, drawn by the page as SVG (nothing from elsewhere), with the
//! same figures as a table for anyone who can't see it.

use leptos::prelude::*;
use unlock_protocol::staff::DayCount;

use super::format::{count, short_day};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
/// Room for the scale on the left, half a day name on the right, the day names below, and a
/// margin above.
const LEFT: f64 = 48.0;
const RIGHT: f64 = 24.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;
/// Label every this many days on the axis.
const LABEL_EVERY: usize = 5;

/// One bar, in the SVG's units.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The top of the scale: the smallest of 1, 2, 5, 10, 20, 50, ... at or above `max`.
pub fn scale_top(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for top in [step, step * 2, step * 5] {
            if top >= max {
                return top;
            }
        }
        step *= 10;
    }
}

/// The bars for `counts` against a scale topping out at [`scale_top`].
pub fn bars(counts: &[u64]) -> (u64, Vec<Bar>) {
    let top = scale_top(counts.iter().copied().max().unwrap_or(0));
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let slot = plot_width / counts.len().max(1) as f64;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let height = plot_height * *n as f64 / top as f64;
            Bar {
                x: LEFT + slot * i as f64 + slot * 0.15,
                y: TOP + plot_height - height,
                width: slot * 0.7,
                height,
            }
        })
        .collect();
    (top, bars)
}

#[component]
pub fn UnlocksChart(#[prop(into)] days: Signal<Vec<DayCount>>) -> impl IntoView {
    let drawn = move || {
        let days = days.get();
        let counts: Vec<u64> = days.iter().map(|d| d.count).collect();
        let (top, bars) = bars(&counts);
        let baseline = HEIGHT - BOTTOM;
        let bars_view = days
            .iter()
            .zip(bars)
            .enumerate()
            .map(|(i, (day, bar))| {
                let label = (i % LABEL_EVERY == 0 || i + 1 == days.len()).then(|| {
                    view! {
                        <text
                            class="app-chart__label"
                            x=bar.x + bar.width / 2.0
                            y=baseline + 18.0
                            text-anchor="middle"
                        >
                            {short_day(&day.day)}
                        </text>
                    }
                });
                view! {
                    <rect class="app-chart__bar" x=bar.x y=bar.y width=bar.width height=bar.height />
                    {label}
                }
            })
            .collect_view();
        view! {
            <line class="app-chart__axis" x1=LEFT y1=baseline x2=WIDTH - RIGHT y2=baseline />
            <line class="app-chart__grid" x1=LEFT y1=TOP x2=WIDTH - RIGHT y2=TOP />
            <text class="app-chart__label" x=LEFT - 8.0 y=TOP + 5.0 text-anchor="end">
                {count(top)}
            </text>
            <text class="app-chart__label" x=LEFT - 8.0 y=baseline + 5.0 text-anchor="end">
                "0"
            </text>
            {bars_view}
        }
    };
    let rows = move || {
        days.get()
            .into_iter()
            .rev()
            .map(|day| {
                view! {
                    <tr class="nhsuk-table__row">
                        <td class="nhsuk-table__cell">{short_day(&day.day)}</td>
                        <td class="nhsuk-table__cell nhsuk-table__cell--numeric">{count(day.count)}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    let summary = move || {
        let total: u64 = days.with(|days| days.iter().map(|d| d.count).sum());
        format!(
            "Cards unlocked each day over the last 30 days: {} in all.",
            count(total)
        )
    };
    view! {
        <figure class="app-chart">
            <svg
                class="app-chart__svg"
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                role="img"
                aria-labelledby="unlocks-chart-title"
                focusable="false"
            >
                <title id="unlocks-chart-title">{summary}</title>
                {drawn}
            </svg>
        </figure>
        <details class="nhsuk-details">
            <summary class="nhsuk-details__summary">
                <span class="nhsuk-details__summary-text">"Show the figures as a table"</span>
            </summary>
            <div class="nhsuk-details__text">
                <table class="nhsuk-table">
                    <caption class="nhsuk-table__caption nhsuk-table__caption--s">
                        "Cards unlocked per day, newest first (UTC days)"
                    </caption>
                    <thead class="nhsuk-table__head">
                        <tr class="nhsuk-table__row">
                            <th scope="col" class="nhsuk-table__header">"Day"</th>
                            <th scope="col" class="nhsuk-table__header nhsuk-table__header--numeric">"Cards unlocked"</th>
                        </tr>
                    </thead>
                    <tbody class="nhsuk-table__body">{rows}</tbody>
                </table>
            </div>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_tops_out_at_a_round_number() {
        assert_eq!(scale_top(0), 1);
        assert_eq!(scale_top(1), 1);
        assert_eq!(scale_top(3), 5);
        assert_eq!(scale_top(7), 10);
        assert_eq!(scale_top(11), 20);
        assert_eq!(scale_top(1_900), 2_000);
        assert_eq!(scale_top(2_001), 5_000);
    }

    #[test]
    fn bars_stand_on_the_baseline_and_scale_with_their_counts() {
        let (top, drawn) = bars(&[0, 5, 10]);
        assert_eq!(top, 10);
        let baseline = HEIGHT - BOTTOM;
        for bar in &drawn {
            assert!((bar.y + bar.height - baseline).abs() < 1e-9, "{bar:?}");
        }
        assert_eq!(drawn[0].height, 0.0);
        assert!((drawn[2].height - 2.0 * drawn[1].height).abs() < 1e-9);
        assert!(
            (drawn[2].y - TOP).abs() < 1e-9,
            "the tallest reaches the top"
        );
        assert!(drawn.windows(2).all(|w| w[0].x + w[0].width < w[1].x));
    }
}
