"""Licence plates: detection, rectification, PP-OCR recognition, Vietnamese plate grammar, fusion."""
