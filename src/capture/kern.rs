//! Pair kerning for the text stills, from a font's OpenType GPOS table: the
//! pair-adjustment lookups of its `kern` feature (OpenType 1.9, GPOS lookup
//! type 2, formats 1 and 2). ab_glyph reads only the legacy `kern` table,
//! which egui's Ubuntu Light does not have, so "AV" and "To" would be set
//! loose without this.
//!
//! Not a shaper: no contextual positioning, marks or ligatures; one
//! horizontal advance adjustment per adjacent pair, the part of shaping a
//! Latin line of a lower third shows.

use ttf_parser::gpos::{PairAdjustment, PositioningSubtable};
use ttf_parser::opentype_layout::LayoutTable;
use ttf_parser::{GlyphId, Tag};

/// Most `kern` lookups kept: a font lists a handful (one per script at
/// most); the bound keeps a malformed table from making every pair slow.
const MAX_KERN_LOOKUPS: usize = 64;

/// The `kern` feature's pair lookups of one font.
pub(super) struct PairKerning<'a> {
    gpos: Option<LayoutTable<'a>>,
    /// Lookup indices, in the order they apply.
    lookups: Vec<u16>,
}

impl<'a> PairKerning<'a> {
    /// Reads `font`'s GPOS table; a font without one (or unreadable) kerns nothing.
    pub(super) fn new(font: &'a [u8]) -> Self {
        let gpos = ttf_parser::Face::parse(font, 0).ok().and_then(|face| face.tables().gpos);
        let kern = Tag::from_bytes(b"kern");
        let mut lookups: Vec<u16> = gpos
            .iter()
            .flat_map(|g| g.features.into_iter())
            .filter(|f| f.tag == kern)
            .flat_map(|f| f.lookup_indices.into_iter())
            .collect();
        lookups.sort_unstable();
        lookups.dedup();
        lookups.truncate(MAX_KERN_LOOKUPS);
        PairKerning { gpos, lookups }
    }

    /// How much closer (negative) or further apart `second` is set after
    /// `first`, in font units: the sum over the lookups of the first
    /// subtable in each that holds the pair.
    pub(super) fn units(&self, first: u16, second: u16) -> i32 {
        let Some(gpos) = self.gpos else { return 0 };
        let (first, second) = (GlyphId(first), GlyphId(second));
        let mut total = 0i32;
        for &index in &self.lookups {
            let Some(lookup) = gpos.lookups.get(index) else { continue };
            for subtable in lookup.subtables.into_iter::<PositioningSubtable<'_>>() {
                let PositioningSubtable::Pair(pair) = subtable else { continue };
                let Some(covered) = pair.coverage().get(first) else { continue };
                let values = match pair {
                    PairAdjustment::Format1 { sets, .. } => sets.get(covered).and_then(|set| set.get(second)),
                    PairAdjustment::Format2 { classes, matrix, .. } => {
                        matrix.get((classes.0.get(first), classes.1.get(second)))
                    }
                };
                if let Some((before, _)) = values {
                    total += i32::from(before.x_advance);
                    break;
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ab_glyph::{Font, FontRef};

    #[test]
    fn ubuntu_light_kerns_classic_pairs_tighter() {
        let data = epaint_default_fonts::UBUNTU_LIGHT;
        let font = FontRef::try_from_slice(data).unwrap();
        let kerning = PairKerning::new(data);
        assert!(!kerning.lookups.is_empty(), "no kern feature in Ubuntu Light's GPOS");
        let pair = |a: char, b: char| kerning.units(font.glyph_id(a).0, font.glyph_id(b).0);
        for (a, b) in [('A', 'V'), ('T', 'o'), ('W', 'a'), ('L', 'T')] {
            assert!(pair(a, b) < 0, "{a}{b}: {}", pair(a, b));
        }
        assert_eq!(pair('l', 'l'), 0);
        // A font without GPOS (Hack, monospaced) kerns nothing.
        let hack = PairKerning::new(epaint_default_fonts::HACK_REGULAR);
        assert_eq!(hack.units(36, 57), 0);
        assert_eq!(PairKerning::new(b"not a font").units(1, 2), 0);
    }
}
