"""Figures and the self-contained HTML report (images inlined as base64 PNG). No Kedro here."""
