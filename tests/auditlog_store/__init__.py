"""Tests of the audit log's stores (memory and file) and of the group committer."""
