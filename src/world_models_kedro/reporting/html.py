"""Assemble a self-contained HTML page: headings, paragraphs, tables and inlined PNG images."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

import pandas as pd

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } .note { color: #666; font-size: 0.9em; }
"""


@dataclass
class Page:
    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, css: str = "") -> None:
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def link(self, before: str, href: str, text: str, after: str = "") -> None:
        """A paragraph with one link (to a page beside the report)."""
        self.parts.append(
            f'<p>{html.escape(before)}<a href="{html.escape(href)}">{html.escape(text)}</a>'
            f"{html.escape(after)}</p>"
        )

    def table(self, frame: pd.DataFrame, float_format: str = "{:.2f}") -> None:
        self.parts.append(
            frame.to_html(index=False, border=0, float_format=float_format.format, na_rep="")
        )

    def image(self, data: bytes, alt: str, mime: str = "image/png") -> None:
        """An image inlined as base64 (PNG, or GIF with ``mime="image/gif"``)."""
        encoded = base64.b64encode(data).decode()
        self.parts.append(
            f'<img alt="{html.escape(alt)}" title="{html.escape(alt)}" src="data:{mime};base64,{encoded}">'
        )

    def render(self) -> str:
        body = "\n".join(self.parts)
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>\n"
            f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n"
        )
