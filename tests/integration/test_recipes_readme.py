"""The README quotes every recipe file of packaging/recipes/ whole: after a marker line
`<!-- recipe: NAME/DIR/FILE -->`, a fenced block whose text is the file's, byte for byte."""
import re

from conftest import REPO

RECIPES = REPO / "packaging" / "recipes"
QUOTE = re.compile(r"^<!-- recipe: (?P<path>\S+) -->\n```\n(?P<body>.*?)^```$", re.M | re.S)


def quotes():
    text = (REPO / "README.md").read_text()
    found = {}
    for match in QUOTE.finditer(text):
        assert match["path"] not in found, f"{match['path']} is quoted twice"
        found[match["path"]] = match["body"]
    markers = re.findall(r"^<!-- recipe: .*$", text, flags=re.M)
    assert len(markers) == len(found), "a recipe marker is not followed by a fenced block"
    return found


def test_every_recipe_file_is_quoted_and_every_quote_matches_its_file():
    files = {str(path.relative_to(RECIPES)): path.read_text()
             for path in RECIPES.rglob("*") if path.is_file()}
    assert len(files) == 8, sorted(files)
    quoted = quotes()
    assert sorted(quoted) == sorted(files)
    for name, body in quoted.items():
        assert body == files[name], f"the README's quote of {name} differs from the file"


def test_the_recipes_say_where_they_go():
    """The README's commands name every recipe file by its installed path."""
    readme = (REPO / "README.md").read_text()
    for path in RECIPES.rglob("*"):
        if path.is_file():
            name = str(path.relative_to(RECIPES))
            assert f"/usr/share/twofactor/recipes/{name}" in readme, name
