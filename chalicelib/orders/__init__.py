"""The orders domain: pure Python, no AWS. Both coordination styles call into it."""
