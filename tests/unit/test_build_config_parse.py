"""blockimg.deploy.config.parse: sans-I/O, every problem at once with its line."""
from __future__ import annotations

import pytest

from blockimg.deploy.config import parse
from blockimg.errors import InvalidInput, Problems


def problems(text: str) -> list:
    with pytest.raises(InvalidInput) as e:
        parse(text, config="c.toml", base="/deploy")
    return [str(p) for p in e.value.problems]


def test_paths_relative_to_the_config_and_defaults():
    plan = parse('[volumes."site"]\nsource = "www"\nsize = "2M"\nmtime = '
                 '2024-05-01T12:00:00Z\n\n[volumes.data]\nsize = 4096\n\n[disk]\n'
                 'volumes = ["site", "data"]\n', base="/deploy")
    site, data = plan.volumes
    assert (site.source, site.output, site.format) == ("/deploy/www", "/deploy/site.img", "tar")
    assert dict(site.options) == {"size": 2 << 20}
    assert site.mtime == 1714564800
    assert (data.source, data.output, data.size) == (None, None, 4096)
    assert plan.disk.output == "/deploy/disk.img" and plan.disk.table == "mbr"
    assert plan.outputs() == ["/deploy/site.img", "/deploy/disk.img"]


def test_every_problem_with_its_line():
    found = problems('top = 1\n[volumes."a b"]\nsource = "x"\n\n[volumes.c]\nsource = 3\n'
                     "  'size' = true\n[volumes.e]\nsize = 100\n")
    assert "c.toml:1: top: unknown" in found[0]
    assert any(p.startswith("c.toml:2: [volumes.a b] volume name") for p in found), found
    assert any(p.startswith("c.toml:6: [volumes.c] source: must be a string") for p in found)
    assert any(p.startswith("c.toml:7: [volumes.c] size: a size is") for p in found)
    assert any(p.startswith("c.toml:9: [volumes.e] size: empty space of 100") for p in found)
    assert any(p.startswith("c.toml:8: [volumes.e] empty space (no source) only exists")
               for p in found)


def test_several_problems_are_one_problems_error():
    with pytest.raises(Problems) as e:
        parse('[volumes.a]\nsource = "a"\nformat = "x"\nplatform = "nope"\n', config="c.toml")
    assert str(e.value).startswith("2 problems in c.toml:")


def test_two_outputs_of_the_same_name():
    found = problems('[volumes.a]\nsource = "a"\noutput = "x.img"\n[volumes.b]\n'
                     'source = "b"\noutput = "x.img"\n')
    assert found == ["/deploy/x.img: written twice (two outputs of the same name) "
                     "(build config)"]


def test_platform_device_name_checked():
    found = problems('[volumes.a]\nsource = "a"\nplatform = "hvt"\ndevice-name = "my-disk"\n')
    assert found[0].startswith("c.toml:4: [volumes.a] device-name: device name 'my-disk'")


@pytest.mark.parametrize("value, kind", [("5", "an integer"), ("true", "a boolean"),
                                         ('["a"]', "an array"),
                                         ("2024-05-01T12:00:00Z", "datetime")])
def test_disk_device_name_of_the_wrong_type_is_a_problem_not_a_crash(value, kind):
    """Regression: `[disk] device-name = 5` with a platform raised TypeError (the Solo5
    name rule was matched against the integer)."""
    with pytest.raises(InvalidInput) as e:
        parse('[volumes.site]\nsource = "www"\n\n[disk]\nvolumes = ["site"]\n'
              f'platform = "hvt"\ndevice-name = {value}\n', config="c.toml", base="/deploy")
    assert str(e.value) == f"c.toml:7: [disk] device-name: must be a string, not {kind} " \
        "(build config)"
