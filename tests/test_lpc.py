"""The LPC data source: layer order, labels, determinism, credits, errors, crispness.

The art is read from a local checkout (never copied into the repo); tests that need it
skip when it is absent. It is looked for at $HEROPORTRAITS_LPC_ART, then at
<repo>/../shared/lpc-art (where CI puts it, beside the clone).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heroportraits import cli
from heroportraits.cli.data import add_lpc
from heroportraits.data import lpc
from heroportraits.data.images import detect_pixel_scale, load_image
from heroportraits.data.lpc import Background, Layer, LPCArt, LPCArtError, RecipeChoice, compose_portrait
from heroportraits.data.lpc_recipes import CREDIT_RULES, RECIPES, VARIETY_SHARES
from heroportraits.data.lpc_variety import VarietyError, concretise, with_variety
from heroportraits.data.palette_labels import label_palette
from heroportraits.paths import preview_path

REPO = Path(__file__).resolve().parents[1]
ART_CANDIDATES = [Path(p) for p in [os.environ.get("HEROPORTRAITS_LPC_ART")] if p] + [
    REPO.parent / "shared" / "lpc-art"
]
ART_DIR = next((p for p in ART_CANDIDATES if (p / "body" / "male").is_dir()), None)
needs_art = pytest.mark.skipif(
    ART_DIR is None,
    reason="LPC art not found at $HEROPORTRAITS_LPC_ART or <repo>/../shared/lpc-art; "
    "git clone https://github.com/makrohn/Universal-LPC-spritesheet there to run these tests",
)
GREY = Background((128, 128, 128), (128, 128, 128))


@pytest.fixture(scope="module")
def art():
    return LPCArt(ART_DIR)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """32 portraits (4 per class x gender) written once for the folder-level tests, from the recipe
    table as written (variety low: the class markers below hold there)."""
    out = tmp_path_factory.mktemp("lpc") / "src"
    lpc.generate_lpc_folder(ART_DIR, out, n=32, seed=3, progress=False, variety="low")
    with open(out / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return out, rows


def _native(img: np.ndarray) -> np.ndarray:
    return img[::2, ::2]  # (32, 32, 3): one value per art pixel


# -------------------------------------------------------------- errors (no art needed)
def test_folder_without_lpc_art_gets_a_clear_error(tmp_path):
    (tmp_path / "cats").mkdir()
    Image.new("RGBA", (64, 64)).save(tmp_path / "cats" / "tom.png")
    with pytest.raises(LPCArtError) as e:
        LPCArt(tmp_path)
    msg = str(e.value)
    assert "body/male" in msg and "git clone https://github.com/makrohn/Universal-LPC-spritesheet" in msg
    assert "--art" in msg
    with pytest.raises(LPCArtError, match="no such folder"):
        LPCArt(tmp_path / "missing")
    assert issubclass(LPCArtError, ValueError)  # the CLI prints it as a one-line error


def test_cli_reports_a_wrong_art_path_in_one_line_and_writes_nothing(project_root, tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "photos" / "cat.png")
    assert cli.main(["lpc", "--art", str(tmp_path / "photos"), "--n", "8", "--name", "x", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not hold the Universal LPC spritesheet art" in err
    assert "git clone https://github.com/makrohn/Universal-LPC-spritesheet" in err and "Traceback" not in err
    assert not (project_root / "data" / "sources" / "x").exists() and not (project_root / "data" / "x").exists()


def test_an_incomplete_checkout_fails_before_writing(tmp_path):
    # Body sheets of the right size but nothing else: the recipe check names what is missing.
    for body in ("male", "female"):
        (tmp_path / "art" / "body" / body).mkdir(parents=True)
        Image.new("RGBA", (832, 1344)).save(tmp_path / "art" / "body" / body / "light.png")
    with pytest.raises(LPCArtError, match="does not fit the LPC art") as e:
        lpc.generate_lpc_folder(tmp_path / "art", tmp_path / "out", n=4, progress=False)
    assert "no sheet matches 'body/female/orc.png'" in str(e.value) and "problems)" in str(e.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(LPCArtError, match="no LPC art folder given"):
        lpc.generate_lpc_folder(None, tmp_path / "out", n=4, progress=False)


def test_sheets_of_the_wrong_size_are_refused(tmp_path):
    for body in ("male", "female"):
        (tmp_path / "body" / body).mkdir(parents=True)
        Image.new("RGBA", (64, 64)).save(tmp_path / "body" / body / "light.png")
    with pytest.raises(LPCArtError, match="832x1344"):
        LPCArt(tmp_path)


# -------------------------------------------------------------- z-order
@needs_art
def test_helmet_covers_hair_whatever_the_dict_order(art):
    hair = Layer("hair/male/xlong/redhead.png")
    helm = Layer("head/helms/male/metal_helm_male.png")
    body = Layer("body/male/light.png")
    # "head" listed before "hair": compose must still follow SLOT_ORDER.
    with_helm = RecipeChoice("warrior", "male", "t", {"head": [helm], "hair": [hair], "body": [body]}, background=GREY)
    without = RecipeChoice("warrior", "male", "t", {"hair": [hair], "body": [body]}, background=GREY)
    a, b = _native(compose_portrait(art, with_helm)), _native(compose_portrait(art, without))
    helm_rgba = art.crop(helm)
    solid = helm_rgba[..., 3] == 1.0  # (32, 32) where the helmet is opaque
    hair_there = art.crop(hair)[..., 3] > 0
    assert (solid & hair_there).sum() > 20  # the test means something: they overlap
    expected = np.round(helm_rgba[..., :3] * 255).astype(np.uint8)
    assert np.array_equal(a[solid], expected[solid])  # the helmet wins on every opaque pixel
    assert not np.array_equal(a[solid & hair_there], b[solid & hair_there])
    # Outside the helmet the hair is still drawn.
    free = hair_there & (helm_rgba[..., 3] == 0) & (art.crop(hair)[..., 3] == 1.0)
    assert free.any() and np.array_equal(a[free], b[free])


@needs_art
def test_armour_covers_the_body_and_the_cape_stays_behind(art):
    body = Layer("body/female/dark.png")
    plate = Layer("torso/plate/chest_female.png")
    cape = Layer("behind_body/cape/normal/female/cape_red.png")
    choice = RecipeChoice(
        "warrior", "female", "t", {"torso": [plate], "body": [body], "behind": [cape]}, background=GREY
    )
    img = _native(compose_portrait(art, choice))
    for layer in (plate,):
        rgba = art.crop(layer)
        solid = rgba[..., 3] == 1.0
        assert solid.sum() > 20
        assert np.array_equal(img[solid], np.round(rgba[solid, :3] * 255).astype(np.uint8))
    body_rgba, cape_rgba = art.crop(body), art.crop(cape)
    both = (body_rgba[..., 3] == 1.0) & (cape_rgba[..., 3] > 0) & (art.crop(plate)[..., 3] == 0)
    assert both.any()
    assert np.array_equal(img[both], np.round(body_rgba[both, :3] * 255).astype(np.uint8))


@needs_art
def test_helmets_and_hoods_hide_the_hair(art):
    for i in range(200):
        _, choice = lpc.make_portrait(art, i, seed=11)
        head = " ".join(layer.path for layer in choice.layers.get("head", []))
        if "helm_" in head or "hood" in head:
            assert choice.layers.get("hair") == [], (i, head)


# -------------------------------------------------------------- labels
# Gear that shows at head and shoulders and that only one class wears.
CLASS_MARKERS = {
    "warrior": ("torso/plate/", "torso/gold/", "torso/chain/"),
    "mage": ("torso/robes_female_no_th-sh/",),
    "rogue": ("torso/leather/shoulders_",),
    "ranger": ("behind_body/equipment/quiver",),
}


@needs_art
def test_labels_follow_the_recipe_and_the_body(small_folder):
    out, rows = small_folder
    assert list(rows[0])[:4] == ["file", "gender", "hero_class", "palette"]
    assert len(rows) == 32
    counts = {}
    for r in rows:
        layers = r["layers"].split(";")
        body = next(layer for layer in layers if layer.startswith("body/") and layer.count("/") == 2)
        assert r["gender"] == {"male": "masculine", "female": "feminine"}[body.split("/")[1]]
        assert all(f"/{r['body']}/" in layer for layer in layers if layer.startswith(("body/", "hair/", "head/helms")))
        for cls, markers in CLASS_MARKERS.items():
            wears = any(layer.startswith(markers) for layer in layers)
            assert wears == (cls == r["hero_class"]), (r["hero_class"], cls, layers)
        img = load_image(out / r["file"])
        assert r["palette"] == label_palette(img)  # measured by the project's labeller, not chosen
        counts[(r["hero_class"], r["gender"])] = counts.get((r["hero_class"], r["gender"]), 0) + 1
    assert set(counts.values()) == {4} and len(counts) == 8  # balanced classes x genders


@needs_art
def test_labels_for_a_fixed_seed(art):
    # Portrait i is class x gender number i % 8 in table order, whatever the seed.
    expected = [(c, g) for c in ("warrior", "mage", "rogue", "ranger") for g in ("masculine", "feminine")]
    for i in range(16):
        img, choice = lpc.make_portrait(art, i, seed=0)
        assert (choice.hero_class, choice.gender) == expected[i % 8], i
        body = next(layer.path for layer in choice.layers["body"])
        assert body.startswith(f"body/{choice.body}/")
        assert label_palette(img) in ("warm", "cool", "dark", "neutral", "muted")
        outfits = [o["name"] for o in RECIPES["classes"][choice.hero_class]["outfits"]]
        assert choice.outfit in outfits  # the class label is the recipe that dressed it


@needs_art
def test_mage_and_rogue_hoods_are_told_apart_by_colour(art):
    hoods = {"mage": set(), "rogue": set(), "ranger": set()}
    for i in range(2, 400, 8):  # mages, rogues and rangers of both genders
        for j in (i, i + 1, i + 2, i + 3, i + 4, i + 5):
            _, c = lpc.make_portrait(art, j, seed=1)
            hoods[c.hero_class] |= {layer.tint for layer in c.layers.get("head", []) if "cloth_hood" in layer.path}
    assert hoods["mage"] and hoods["rogue"] and hoods["ranger"]
    assert not (hoods["mage"] & hoods["rogue"]) and not (hoods["mage"] & hoods["ranger"])
    assert not (hoods["rogue"] & hoods["ranger"])


@needs_art
def test_same_seed_same_portraits_other_seed_others(art):
    a = [lpc.make_portrait(art, i, seed=5) for i in range(12)]
    b = [lpc.make_portrait(art, i, seed=5) for i in range(12)]
    c = [lpc.make_portrait(art, i, seed=6) for i in range(12)]
    for (ia, ca), (ib, cb) in zip(a, b):
        assert np.array_equal(ia, ib) and ca.ordered_layers() == cb.ordered_layers()
    assert sum(not np.array_equal(ia, ic) for (ia, _), (ic, _) in zip(a, c)) >= 10
    # One portrait does not depend on which others were made before it.
    alone, _ = lpc.make_portrait(art, 7, seed=5)
    assert np.array_equal(alone, a[7][0])


@needs_art
def test_portraits_are_crisp_64px(small_folder):
    out, rows = small_folder
    for r in rows[:16]:
        img = load_image(out / r["file"])
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert detect_pixel_scale(img, tolerance=0) >= 2


# -------------------------------------------------------------- credits and metadata
@needs_art
def test_credit_rules_name_real_authors_items(art):
    authors = lpc.parse_authors(art.authors_file().read_text(encoding="utf-8"))
    assert "Johannes Sjölund" in authors and "helmet metal (plate)" in authors["Johannes Sjölund"]
    for _, pairs in CREDIT_RULES:
        for author, item in pairs:
            assert author in authors, author
            if "{1}" not in item:
                assert item in authors[author], (author, item)


@needs_art
def test_credits_list_the_authors_of_layers_used(small_folder):
    out, rows = small_folder
    text = (out / "CREDITS.txt").read_text(encoding="utf-8")
    assert "CC-BY-SA 3.0" in text and "GPL 3.0" in text and lpc.UPSTREAM_URL in text
    used = sorted({layer.split("#")[0] for r in rows for layer in r["layers"].split(";")})
    credits = lpc.credits_for(used)
    for author, items in credits.items():
        assert author in text
        for item in items:
            assert item in text
    assert "Stephen Challener (AKA Redshrike)" in text  # every body is his walk cycle
    if any("metal_helm" in p for p in used):
        assert "helmet metal (plate)" in text
    # Layers not used are not credited: no wings in these recipes, so no wings credit.
    assert "wings" not in text.lower()
    assert "no specific author entry" not in text  # every used layer has a rule


@needs_art
def test_folder_has_preview_and_source(small_folder):
    out, _ = small_folder
    source = json.loads((out / "source.json").read_text())
    assert source["kind"] == "lpc" and source["seed"] == 3 and source["n"] == 32 and source["variety"] == "low"
    assert source["hero_classes"] == list(RECIPES["classes"])
    assert source["url"] == lpc.UPSTREAM_URL and "CC-BY-SA 3.0" in source["licence"]
    assert preview_path(out).stat().st_size > 0
    assert sorted(p.name for p in (out / "images").iterdir())[:2] == ["00000.png", "00001.png"]


# -------------------------------------------------------------- recipes are data
@needs_art
def test_recipe_table_is_valid_and_checked(art):
    assert lpc.check_recipes(art) == []
    broken = json.loads(json.dumps(RECIPES))
    broken["classes"]["mage"]["outfits"][0]["slots"]["head"].append({"w": 1, "layers": ["head/hats/{g}/wizard.png"]})
    problems = lpc.check_recipes(art, broken)
    assert any("head/hats/male/wizard.png" in p for p in problems)


@needs_art
def test_a_json_recipe_table_replaces_the_classes(art, tmp_path):
    table = json.loads(json.dumps(RECIPES))
    table["classes"] = {
        "knight": {
            "outfits": [
                {
                    "name": "helmed",
                    "slots": {
                        "torso": [{"w": 1, "layers": ["torso/plate/chest_{g}.png"]}],
                        "head": [{"w": 1, "layers": ["head/helms/{g}/golden_helm_{g}.png"], "hide_hair": True}],
                    },
                }
            ]
        }
    }
    path = tmp_path / "recipes.json"
    path.write_text(json.dumps(table))
    recipes = lpc.load_recipes(path)
    out = lpc.generate_lpc_folder(
        ART_DIR, tmp_path / "knights", n=6, seed=0, progress=False, recipes=recipes, variety="low"
    )
    rows = list(csv.DictReader(open(out / "labels.csv", encoding="utf-8")))
    assert {r["hero_class"] for r in rows} == {"knight"}
    assert all("golden_helm" in r["headgear"] and r["hair"] == "hidden" for r in rows)


@needs_art
def test_the_second_composition_resolves_and_its_heads_are_judged(art):
    """studies/recipes/lpc_courts.json, the composition kept out of tuning, names only real sheets at both
    varieties, and every head item it draws is of a kind the headgear judge knows."""
    from heroportraits.evaluation.headgear import headgear_kind

    table = lpc.load_recipes(REPO / "studies" / "recipes" / "lpc_courts.json")
    assert set(table["classes"]).isdisjoint(RECIPES["classes"])  # its own classes, not the built-in table's
    for variety in ("low", "high"):
        varied = with_variety(table, variety)
        assert lpc.check_recipes(art, varied) == []
        heads = [lpc.make_portrait(art, i, seed=5, recipes=varied)[1].layers.get("head", []) for i in range(60)]
        assert all(headgear_kind(str(item)) for items in heads for item in items)


# -------------------------------------------------------------- CLI into a final dataset
@needs_art
def test_cli_builds_a_final_dataset_with_credits(project_root):
    parser = argparse.ArgumentParser()
    add_lpc(parser.add_subparsers())
    args = parser.parse_args(["lpc", "--art", str(ART_DIR), "--n", "40", "--name", "lpc_tiny", "--quiet"])
    args.func(args)
    final = project_root / "data" / "lpc_tiny"
    meta = json.loads((final / "dataset.json").read_text())
    assert meta["source"]["kind"] == "lpc" and meta["source"]["url"] == lpc.UPSTREAM_URL
    assert meta["source"]["input_dir"] == "data/sources/lpc_tiny"
    assert meta["attributes"]["hero_class"] == list(RECIPES["classes"])
    assert meta["prepared"]["palette_agreement"]["accuracy"] == 1.0  # prepare re-measures the same labels
    assert (final / "CREDITS.txt").read_text(encoding="utf-8").startswith("Portraits composed from the Universal LPC")
    assert (project_root / "data" / "sources" / "lpc_tiny" / "images" / "00039.png").exists()


# -------------------------------------------------------------- variety
def test_low_variety_is_the_table_as_written_and_high_leaves_it_alone():
    before = json.dumps(RECIPES, sort_keys=True)
    assert with_variety(RECIPES, "low") == RECIPES
    high = with_variety(RECIPES, "high")
    assert json.dumps(RECIPES, sort_keys=True) == before  # a copy, never the table itself
    assert list(high["classes"]) == list(RECIPES["classes"])  # the same labels
    for spec in high["classes"].values():
        assert len(spec["outfits"]) >= 2  # every class draws from several outfits
        for outfit in spec["outfits"]:
            head = outfit["slots"]["head"]
            assert sum(o["w"] for o in head) == pytest.approx(1.0)
            assert sum(o["w"] for o in head if not o["layers"]) == pytest.approx(VARIETY_SHARES["bare_head"])
    with pytest.raises(VarietyError, match="low"):
        with_variety(RECIPES, "extreme")


def test_a_borrowed_item_is_made_concrete_with_its_lenders_odds():
    hood = {"w": 6, "layers": ["head/hoods/{g}/cloth_hood_{g}.png"], "tint": "{robe}", "unless": {"robe": ["black"]}}
    options = concretise(hood, {"robe": {"blue": 2, "red": 1, "black": 1}, "cape": ["red"]})
    assert [(o["tint"], o["w"]) for o in options] == [("blue", 3.0), ("red", 1.5)]  # black ruled out by `unless`
    assert all(o["layers"] == hood["layers"] and "robe" not in o["unless"] for o in options)  # {g}: still per body


def _head_sheets(choice) -> str:
    return ";".join(sorted(layer.path.rsplit("/", 1)[-1] + f"#{layer.tint}" for layer in choice.layers.get("head", [])))


@needs_art
def test_high_variety_mixes_headgear_across_classes(art):
    """Under "high", the headgear names the class far less: predicting the class from the head item
    (its most common class) is right much less often than under "low", each class wears several head
    items, about a quarter go bare-headed, and some wear another class's item."""
    seen, stats = {}, {}
    for variety in ("low", "high"):
        table = with_variety(RECIPES, variety)
        assert lpc.check_recipes(art, table) == []  # every added option resolves to real sheets
        seen[variety] = [lpc.make_portrait(art, i, seed=2, recipes=table)[1] for i in range(480)]
        by_item: dict[str, dict[str, int]] = {}
        for c in seen[variety]:
            counts = by_item.setdefault(_head_sheets(c), {})
            counts[c.hero_class] = counts.get(c.hero_class, 0) + 1
        worn = [c for c in seen[variety] if _head_sheets(c)]
        stats[variety] = {
            "predictable": sum(max(v.values()) for k, v in by_item.items() if k) / len(worn),
            "bare": 1 - len(worn) / len(seen[variety]),
            "items": {cls: len({_head_sheets(c) for c in worn if c.hero_class == cls}) for cls in RECIPES["classes"]},
            "light_skin": np.mean([c.vars["skin"] == "light" for c in seen[variety]]),
        }
    low, high = stats["low"], stats["high"]
    assert high["predictable"] < low["predictable"] - 0.1, stats
    assert 0.15 < high["bare"] < 0.4 and high["bare"] > low["bare"], stats
    assert all(n >= 5 for n in high["items"].values()), stats
    assert high["light_skin"] < low["light_skin"], stats  # flatter skin odds: fewer of the commonest
    borrowed = [
        c
        for c in seen["high"]
        if (c.hero_class == "warrior" and any(k in _head_sheets(c) for k in ("cloth_hood", "cap", "tiara")))
        or (c.hero_class in ("mage", "ranger") and "helm" in _head_sheets(c))
    ]
    assert borrowed, "no portrait wears another class's head item"


@needs_art
def test_variety_is_recorded_and_the_cli_defaults_to_high(project_root):
    parser = argparse.ArgumentParser()
    add_lpc(parser.add_subparsers())
    args = parser.parse_args(["lpc", "--art", str(ART_DIR), "--n", "16", "--name", "v", "--quiet", "--no-build"])
    assert args.variety == "high"
    args.func(args)
    source = json.loads((project_root / "data" / "sources" / "v" / "source.json").read_text())
    assert source["variety"] == "high"
