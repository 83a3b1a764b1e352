"""MCT's reader registry: which format a folder or file is read as, the shape check every reader
makes, and the convexify options <-> metadata keys stated once."""

from __future__ import annotations

import pytest
import torch

from mct_plugin.harness.errors import BufferFormatError
from mct_plugin.mct.format import (conversion_metadata, conversion_settings, read_metadata, recorded_conversion,
                                   write_mct_file)
from mct_plugin.mct.options import ConvexifyOptions
from mct_plugin.mct.readers import (CONVERTED, MCT_FILES, PUBLIC_FILES, READERS, REPLAY_BUFFERS, Expected,
                                    reader_of_file, reader_of_folder)

from helpers import convexify

SHAPES = [(3, 2), (4,)]
OPTIONS = ConvexifyOptions(waypoints=2, smooth="none", waypoint_spacing="even")


def trajectory(epochs: int = 4, seed: int = 0) -> list[list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=generator) for s in SHAPES] for _ in range(epochs + 1)]


def write_buffer(folder, n: int = 0):
    torch.save([trajectory(seed=n)], folder / f"replay_buffer_{n}.pt")
    return folder / f"replay_buffer_{n}.pt"


def write_public_pair(folder, n: int = 0):
    """A P = 2 waypoint/step pair as the public MCT code writes it."""
    convexified = convexify(trajectory(seed=n))
    steps = [[torch.tensor(float(v)) for v in row] for row in convexified.beta]
    torch.save([convexified.waypoints], folder / f"waypoint_buffer_{n}.pt")
    torch.save([steps], folder / f"step_buffer_{n}.pt")
    return folder / f"waypoint_buffer_{n}.pt"


def write_mct(folder, n: int = 0, **metadata):
    path = folder / f"replay_buffer_{n}.mct.safetensors"
    write_mct_file(path, [convexify(trajectory(seed=n))], {**conversion_metadata(OPTIONS), **metadata})
    return path


def test_a_folder_is_read_in_the_first_format_it_holds(tmp_path):
    assert reader_of_folder(tmp_path) is None and reader_of_folder(tmp_path / "missing") is None
    buffer = write_buffer(tmp_path)
    assert reader_of_folder(tmp_path) is REPLAY_BUFFERS and REPLAY_BUFFERS.files(tmp_path) == [buffer]
    waypoint_file = write_public_pair(tmp_path)
    assert reader_of_folder(tmp_path) is PUBLIC_FILES and PUBLIC_FILES.files(tmp_path) == [waypoint_file]
    mct_file = write_mct(tmp_path)
    assert reader_of_folder(tmp_path) is MCT_FILES and MCT_FILES.files(tmp_path) == [mct_file]
    assert reader_of_folder(tmp_path, CONVERTED) is PUBLIC_FILES  # the converter never reads MCT files


def test_a_file_is_read_in_the_format_its_name_says(tmp_path):
    waypoint_file = tmp_path / "waypoint_buffer_ip4_0.pt"
    assert reader_of_file(waypoint_file, CONVERTED) is PUBLIC_FILES
    assert reader_of_file(tmp_path / "experts.pt", CONVERTED) is REPLAY_BUFFERS  # a raw buffer has any name
    assert reader_of_file(tmp_path / "a.mct.safetensors", READERS) is MCT_FILES
    with pytest.raises(BufferFormatError, match="waypoint_buffer_ip4_0.pt has no matching step_buffer_ip4_0.pt"):
        PUBLIC_FILES.parts(waypoint_file)
    (tmp_path / "step_buffer_ip4_0.pt").touch()
    assert PUBLIC_FILES.parts(waypoint_file) == (waypoint_file, tmp_path / "step_buffer_ip4_0.pt")


@pytest.mark.parametrize("reader,write", [(MCT_FILES, write_mct), (PUBLIC_FILES, write_public_pair),
                                          (REPLAY_BUFFERS, write_buffer)])
def test_every_reader_loads_trajectories_that_fit_the_model_and_refuses_others(tmp_path, reader, write):
    path = write(tmp_path)
    loaded = reader.load(path, Expected(SHAPES), OPTIONS)
    expected = convexify(trajectory())
    assert len(loaded.trajectories) == 1 and loaded.trajectories[0].epochs == expected.epochs
    assert torch.allclose(loaded.trajectories[0].flat_point_at(2.5), expected.flat_point_at(2.5), atol=1e-6)
    assert (loaded.checkpoints is not None) == (reader is REPLAY_BUFFERS)  # only raw buffers hold checkpoints
    assert reader.load(path, Expected(), OPTIONS).trajectories[0].epochs == expected.epochs  # shapes unknown
    with pytest.raises(BufferFormatError, match=str(path.name)):
        reader.load(path, Expected([(3, 2), (5,)]), OPTIONS)


def test_mct_files_are_checked_against_the_dataset_and_model_they_record(tmp_path):
    path = write_mct(tmp_path, dataset="FashionMNIST", model="ConvNet")
    assert len(MCT_FILES.load(path, Expected(SHAPES, dataset="FashionMNIST", model="ConvNet"), OPTIONS).trajectories) == 1
    with pytest.raises(BufferFormatError, match="holds experts of model ConvNet but --model is ConvNetW32"):
        MCT_FILES.load(path, Expected(SHAPES, dataset="FashionMNIST", model="ConvNetW32"), OPTIONS)


def test_the_convexify_options_round_trip_through_the_metadata_and_older_files_read_as_distance(tmp_path):
    options = ConvexifyOptions(waypoints=3, smooth="end", waypoint_spacing="public", pacing="uniform")
    assert conversion_metadata(options) == {"waypoints_requested": 3, "smoothing": "end", "spacing": "public",
                                            "pacing": "uniform"}
    assert recorded_conversion(conversion_metadata(options)) == conversion_settings(options)
    assert recorded_conversion({"waypoints_requested": 3}) == {"waypoints": 3, "pacing": "distance"}
    path = write_mct(tmp_path)
    assert MCT_FILES.conversion(path) == conversion_settings(OPTIONS) == recorded_conversion(read_metadata(path))
    assert PUBLIC_FILES.conversion(path) == {} and REPLAY_BUFFERS.conversion(path) == {}


def test_readers_say_when_the_requested_options_do_not_apply(tmp_path):
    """Only about the options the user asked for: the defaults of the others (--waypoints 4) are no request."""
    path = write_mct(tmp_path)
    assert MCT_FILES.conversion_note(tmp_path, [path], OPTIONS, {"waypoints"}) is None
    other = ConvexifyOptions(waypoints=4, smooth="none", waypoint_spacing="even")
    note = MCT_FILES.conversion_note(tmp_path, [path], other, {"waypoints", "teacher_label"})
    assert note == (f"the MCT files in {tmp_path} were converted with waypoints=2; the requested --waypoints 4 do "
                    f"not apply to converted files (config.json records what is used)")
    assert MCT_FILES.conversion_note(tmp_path, [path], other, {"smooth", "teacher_label"}) is None
    assert PUBLIC_FILES.conversion_note(tmp_path, [], OPTIONS, {"smooth"}) == (
        f"the public MCT files in {tmp_path} keep their own waypoints and step sizes (--waypoints, --smooth, "
        f"--waypoint-spacing and --pacing apply to MTT buffers only)")
    assert PUBLIC_FILES.conversion_note(tmp_path, [], OPTIONS, {"teacher_label"}) is None
    assert REPLAY_BUFFERS.conversion_note(tmp_path, [], OPTIONS, {"waypoints"}) is None


def test_mct_files_carry_their_source_training_record(tmp_path):
    recorded = write_mct(tmp_path, 0, training={"train_epochs": 3})
    unrecorded = write_mct(tmp_path, 1, training=None)
    assert MCT_FILES.training(recorded) == {"train_epochs": 3} and MCT_FILES.training(unrecorded) is None
    assert REPLAY_BUFFERS.training(write_buffer(tmp_path)) is None  # no record beside it
