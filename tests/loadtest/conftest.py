"""Stand-ins for the Debian packages' documentation files, shared by the real-text tests."""

import pytest

from loadtest import realtext


def _page(tmp_path, rel, text):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def doc_root(tmp_path, monkeypatch):
    monkeypatch.setattr(realtext, "package_version", lambda p: "1.0-test")
    body = "Debian is a free operating system, built by volunteers around the world."
    _page(tmp_path, "debian/FAQ/basic.en.html",
          "<html><title>FAQ</title><body><h1>Chapter 1. Basics</h1><p>Intro text that "
          "is long enough to be kept as a section.</p>"
          f"<h2>1.1. What is Debian?</h2><p>{body}</p>"
          "<h2>1.2. Where is it?</h2><p>x</p>"
          "<h2>1.3. Package names</h2><p>Names are lower case letters, digits and signs.</p>"
          "</body></html>")
    _page(tmp_path, "debian-reference-en/docs/ch01.en.html",
          "<html><body><h2>1.1. Why use it?</h2><p>A reference section about shells "
          "and other things.</p></body></html>")
    _page(tmp_path, "git-doc/git-add.txt",
          "git-add(1)\n==========\n\nNAME\n----\ngit-add - Add file contents to the index\n"
          "\nSYNOPSIS\n--------\n'git add' <pathspec>\n")
    _page(tmp_path, "git-doc/git-rm.txt",
          "git-rm(1)\n=========\n\nNAME\n----\ngit-rm - Remove files\n\nDESCRIPTION\n"
          "-----------\nRemove files from the index.\n")
    _page(tmp_path, "git-doc/cmds-main.txt", "linkgit:git-add[1]::\n\tAdd file contents.\n")
    _page(tmp_path, "postgresql-doc-15/html/sql-createtable.html",
          '<html><head><title>CREATE TABLE</title></head><body><div class="refnamediv">'
          '<h2>Name</h2><p>CREATE TABLE — define a new <code>table</code></p></div>'
          "<h2>Synopsis</h2><pre>CREATE TABLE name (...)</pre></body></html>")
    _page(tmp_path, "postgresql-doc-15/html/tutorial.html",
          "<html><body><h2>Tutorial</h2><p>No name block here.</p></body></html>")
    return tmp_path
