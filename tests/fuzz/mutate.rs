//! The mutation engine: seeds (valid inputs) changed by a few stacked edits — bit flips,
//! boundary bytes, insertions, deletions, duplications, splices with another seed, tokens of
//! the input's language, and BER length rewrites — from a seeded generator, so a run is
//! reproduced by its seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Inputs are kept below this size (parsers' own limits are far lower).
const MAX_INPUT: usize = 64 * 1024;

/// Bytes at the edges of what parsers expect.
const BOUNDARY: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff, 0x30, 0xa0, 0x04,
];

pub struct Mutator {
    rng: StdRng,
}

impl Mutator {
    pub fn new(seed: u64) -> Mutator {
        Mutator {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// One input: a seed with one to eight edits (fewer more often).
    pub fn next(&mut self, seeds: &[Vec<u8>], dict: &[&[u8]]) -> Vec<u8> {
        let pick = self.rng.gen_range(0..seeds.len().max(1));
        let mut data = seeds.get(pick).cloned().unwrap_or_default();
        let edits = 1 + self
            .rng
            .gen_range(0..8usize)
            .min(self.rng.gen_range(0..8usize));
        for _ in 0..edits {
            self.edit(&mut data, seeds, dict);
        }
        data.truncate(MAX_INPUT);
        data
    }

    fn pos(&mut self, data: &[u8]) -> usize {
        if data.is_empty() {
            0
        } else {
            self.rng.gen_range(0..data.len())
        }
    }

    fn edit(&mut self, data: &mut Vec<u8>, seeds: &[Vec<u8>], dict: &[&[u8]]) {
        match self.rng.gen_range(0..11u8) {
            0 if !data.is_empty() => {
                let p = self.pos(data);
                data[p] ^= 1 << self.rng.gen_range(0..8);
            }
            1 if !data.is_empty() => {
                let p = self.pos(data);
                data[p] = self.rng.gen();
            }
            2 if !data.is_empty() => {
                let p = self.pos(data);
                data[p] = BOUNDARY[self.rng.gen_range(0..BOUNDARY.len())];
            }
            3 => {
                let p = self.pos(data);
                let n = self.rng.gen_range(1..8);
                for _ in 0..n {
                    let b = self.rng.gen();
                    data.insert(p.min(data.len()), b);
                }
            }
            4 if data.len() > 1 => {
                let p = self.pos(data);
                let n = self.rng.gen_range(1..=(data.len() - p).min(32));
                data.drain(p..p + n);
            }
            5 if !data.is_empty() => {
                let p = self.pos(data);
                let n = self.rng.gen_range(1..=(data.len() - p).min(256));
                let chunk: Vec<u8> = data[p..p + n].to_vec();
                let most = if self.rng.gen_bool(0.1) { 64 } else { 3 };
                let times = self.rng.gen_range(1..=most);
                let at = self.pos(data);
                for _ in 0..times {
                    data.splice(at..at, chunk.iter().copied());
                }
            }
            6 if !dict.is_empty() => {
                let token = dict[self.rng.gen_range(0..dict.len())];
                let p = self.pos(data);
                data.splice(p..p, token.iter().copied());
            }
            7 if !seeds.is_empty() => {
                let other = &seeds[self.rng.gen_range(0..seeds.len())];
                let cut = self.pos(data);
                let from = if other.is_empty() {
                    0
                } else {
                    self.rng.gen_range(0..other.len())
                };
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            8 if !data.is_empty() => {
                let p = self.pos(data);
                data.truncate(p.max(1));
            }
            9 if data.len() > 2 => {
                // A BER length rewrite: short form to long form, or a huge value.
                let p = 1 + self.rng.gen_range(0..data.len() - 1);
                let replacement: &[u8] = match self.rng.gen_range(0..4u8) {
                    0 => &[0x84, 0xff, 0xff, 0xff, 0xff],
                    1 => &[0x81, 0x00],
                    2 => &[0x80],
                    _ => &[0x82, 0x01, 0x00],
                };
                data.splice(p..p + 1, replacement.iter().copied());
            }
            _ => {
                // Swap two bytes.
                if data.len() > 1 {
                    let (a, b) = (self.pos(data), self.pos(data));
                    data.swap(a, b);
                }
            }
        }
    }
}
