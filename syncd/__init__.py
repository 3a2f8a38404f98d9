"""syncd: keeps a shared folder of PDFs in sync with AccessibleDocs."""

__version__ = "0.1.0"
