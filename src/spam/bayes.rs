//! The per-account Bayesian classifier: Gary Robinson's token probabilities with his
//! correction for rare tokens, combined with Fisher's inverse chi-square (as SpamBayes and
//! bogofilter do). It gives a spam probability in [0, 1] and, unlike a plain product of
//! probabilities, a middle value when the evidence points both ways, which is what keeps
//! legitimate mail out of Junk when the filter is unsure.
//!
//! Counts come from the store (how many spam and ham messages the account trained, and per
//! token in how many of each it appeared); nothing here does I/O.

/// What the account has trained: the number of spam and ham messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub spam: u64,
    pub ham: u64,
}

/// One token's counts: in how many trained spam and ham messages it appeared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub spam: u64,
    pub ham: u64,
}

/// Robinson's strength of the prior (`s`) and its value (`x`) for a token seen rarely.
const STRENGTH: f64 = 0.45;
const PRIOR: f64 = 0.5;
/// Tokens closer than this to 0.5 say nothing and are left out.
const MIN_DEVIATION: f64 = 0.1;
/// At most this many of the most telling tokens are combined.
const MAX_CLUES: usize = 150;
/// Below this many trained messages of either kind, the classifier abstains.
pub const MIN_TRAINED: u64 = 10;

/// The verdict on one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Probability of spam, 0 (ham) to 1 (spam).
    pub probability: f64,
    /// How many tokens took part.
    pub clues: usize,
}

/// Robinson's f(w): the token's spam probability, pulled towards [`PRIOR`] when seen rarely.
pub fn token_probability(counts: Counts, totals: Totals) -> f64 {
    let spam_ratio = counts.spam as f64 / totals.spam.max(1) as f64;
    let ham_ratio = counts.ham as f64 / totals.ham.max(1) as f64;
    let n = (counts.spam + counts.ham) as f64;
    let p = if spam_ratio + ham_ratio > 0.0 {
        spam_ratio / (spam_ratio + ham_ratio)
    } else {
        PRIOR
    };
    (STRENGTH * PRIOR + n * p) / (STRENGTH + n)
}

/// Classifies a message from its tokens' counts; `None` while the account has trained fewer
/// than [`MIN_TRAINED`] messages of either kind.
pub fn classify(counts: &[Counts], totals: Totals) -> Option<Verdict> {
    if totals.spam < MIN_TRAINED || totals.ham < MIN_TRAINED {
        return None;
    }
    let mut clues: Vec<f64> = counts
        .iter()
        .filter(|c| c.spam + c.ham > 0)
        .map(|&c| token_probability(c, totals))
        .filter(|f| (f - 0.5).abs() >= MIN_DEVIATION)
        .collect();
    // The most telling first.
    clues.sort_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
    clues.truncate(MAX_CLUES);
    if clues.is_empty() {
        return Some(Verdict {
            probability: 0.5,
            clues: 0,
        });
    }
    let f = |x: f64| x.clamp(1e-6, 1.0 - 1e-6);
    let n = clues.len();
    let ln_ham: f64 = clues.iter().map(|&p| f(p).ln()).sum();
    let ln_spam: f64 = clues.iter().map(|&p| (1.0 - f(p)).ln()).sum();
    // H near 1: the tokens look like ham; S near 1: like spam.
    let h = chi2_q(-2.0 * ln_ham, 2 * n);
    let s = chi2_q(-2.0 * ln_spam, 2 * n);
    Some(Verdict {
        probability: ((1.0 + h - s) / 2.0).clamp(0.0, 1.0),
        clues: n,
    })
}

/// The probability that a chi-square variable with `degrees` (even) degrees of freedom is at
/// least `x`: the series of SpamBayes' chi2Q, exact for even degrees.
fn chi2_q(x: f64, degrees: usize) -> f64 {
    let m = x / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..degrees / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(spam: u64, ham: u64) -> Counts {
        Counts { spam, ham }
    }

    #[test]
    fn chi2_matches_known_values() {
        // P(X >= 2) for 2 degrees of freedom is e^-1.
        assert!((chi2_q(2.0, 2) - (-1.0f64).exp()).abs() < 1e-12);
        // For 4 degrees: e^-m (1 + m), m = x/2.
        assert!((chi2_q(6.0, 4) - (-3.0f64).exp() * 4.0).abs() < 1e-12);
        assert!(chi2_q(0.0, 10) >= 0.999);
    }

    #[test]
    fn rare_tokens_lean_to_the_prior() {
        let totals = Totals {
            spam: 100,
            ham: 100,
        };
        let once = token_probability(c(1, 0), totals);
        let often = token_probability(c(50, 0), totals);
        assert!(0.5 < once && once < often && often < 1.0, "{once} {often}");
        assert!((token_probability(c(0, 0), totals) - 0.5).abs() < 1e-12);
        assert!(token_probability(c(0, 40), totals) < 0.05);
    }

    #[test]
    fn verdicts() {
        let totals = Totals {
            spam: 200,
            ham: 200,
        };
        let spammy = vec![c(150, 2); 20];
        let hammy = vec![c(1, 120); 20];
        let spam = classify(&spammy, totals).unwrap();
        let ham = classify(&hammy, totals).unwrap();
        assert!(spam.probability > 0.99, "{spam:?}");
        assert!(ham.probability < 0.01, "{ham:?}");
        // Both ways at once: unsure, not spam.
        let mixed: Vec<Counts> = spammy.iter().chain(&hammy).copied().collect();
        let unsure = classify(&mixed, totals).unwrap();
        assert!((0.3..0.7).contains(&unsure.probability), "{unsure:?}");
        // Nothing known: exactly unsure; too little training: no verdict.
        assert_eq!(classify(&[c(0, 0)], totals).unwrap().probability, 0.5);
        assert!(classify(&spammy, Totals { spam: 5, ham: 200 }).is_none());
    }
}
