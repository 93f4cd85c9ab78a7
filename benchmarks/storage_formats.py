"""Our memory-mapped .npy shards against streaming formats: writing, a pass, random rows, an epoch.

    python benchmarks/storage_formats.py [--n 40000] [--random 2000] [--batch 256] [--json PATH]

Draws `--n` distinct 64×64 colour scenes (`scenes.scene`, about 0.4 ms each) and writes the same
pixels in each format, in shards of about `SHARD_BYTES` (32 MiB), stored raw so that the
comparison is of the containers, not of image codecs: our shards (`contract.ShardWriter`), a
WebDataset tar with each image as a `.npy` member, litdata's chunks (`BinaryWriter`, its numpy
serializer) and MosaicML streaming's MDS shards (an `ndarray:uint8:64,64,3` column, uncompressed);
plus a WebDataset with each image as a PNG, for what the usual image encoding costs. Per format
it reports the write time, bytes and files on disk, and three reads, each in a fresh process:

- a pass: every image once in order (ours: `mapped.read_chunks`), images/s;
- random rows: `--random` rows read one at a time (ours: indexing `ShardedImages`; litdata and
  MosaicML: `StreamingDataset[i]`; WebDataset has no index, so it reads members at the offsets
  in the tar headers, an index built on opening, whose seconds are reported apart), rows/s;
- a shuffled epoch in batches of `--batch`, as training reads (ours: a permutation, each batch
  by `mapped.gather`; litdata and MosaicML: their own shuffle; WebDataset: shards shuffled, then
  a buffer of 1,000 samples, so an approximate shuffle), images/s;

and each read's peak resident memory (VmHWM, reset once the libraries are imported, so it counts
what the read opened and touched, memory-mapped pages included) beside the process's resident
memory before it (imports: torch's, for litdata and MosaicML). Every image read is checked
against a 64-bit fingerprint of its original, and an epoch must serve every row exactly once;
checking is not timed. Libraries are iterated in the process (no loader workers) and their
samples stacked into batches by the same code. Each format is read just after it is written,
so its files are in the page cache: this compares the formats' CPU and memory, not disks.

The libraries are optional; a missing one is skipped with the reason. Install them beside torch
without letting pip replace it (mosaicml-streaming also pins numpy<2.2, so a separate venv keeps
the project's numpy):

    pip install webdataset litdata mosaicml-streaming -c <(echo torch==2.13.0)
    pip uninstall -y torchvision

Both streaming libraries pull in torchvision, and PyPI's is a CUDA build that cannot load beside
the CPU torch ("operator torchvision::nms does not exist"), which then breaks `import lightning`
too. litdata never imports it for arrays; mosaicml-streaming imports it with the package, so it
runs only where a torchvision built for the installed torch is present.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import multiprocessing
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scenes import scene

from datamatters.data.contract import SHARD_BYTES, ShardWriter, _read_shards
from datamatters.data.mapped import ShardedImages, gather, read_chunks

SIZE = 64
WDS_SHUFFLE_BUFFER = 1000  # samples WebDataset shuffles among, after shuffling its shards

Batch = tuple[np.ndarray, np.ndarray]  # row numbers, and their uint8 k×H×W×C pixels


class Format(Protocol):
    package: str | None  # the distribution that provides it; None for ours
    module: str | None

    def write(self, images: np.ndarray, folder: Path) -> None: ...
    def sequential(self, folder: Path, batch: int) -> Iterator[Batch]: ...
    def reader(self, folder: Path) -> Callable[[int], np.ndarray]: ...
    def shuffled(self, folder: Path, batch: int, seed: int) -> Iterator[Batch]: ...


def batched(samples: Iterable[tuple[int, np.ndarray]], size: int) -> Iterator[Batch]:
    """(row, image) samples stacked `size` at a time."""
    rows, images = [], []
    for row, image in samples:
        rows.append(row)
        images.append(image)
        if len(rows) == size:
            yield np.array(rows), np.stack(images)
            rows, images = [], []
    if rows:
        yield np.array(rows), np.stack(images)


class NpyShards:
    """Ours: the shards every data stage writes and reads (`data/contract.py`)."""

    package = module = None

    def write(self, images: np.ndarray, folder: Path) -> None:
        with ShardWriter(folder, len(images), images.shape[1:]) as shards:
            shards.write(images)

    def sequential(self, folder: Path, batch: int) -> Iterator[Batch]:
        images = ShardedImages(_read_shards(folder, ""))
        rows = np.arange(len(images))
        for where, pixels in read_chunks(images, rows, batch):
            yield rows[where], pixels

    def reader(self, folder: Path) -> Callable[[int], np.ndarray]:
        images = ShardedImages(_read_shards(folder, ""))
        return lambda row: np.array(images[row])

    def shuffled(self, folder: Path, batch: int, seed: int) -> Iterator[Batch]:
        images = ShardedImages(_read_shards(folder, ""))
        order = np.random.default_rng(seed).permutation(len(images))
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            yield rows, gather(images, rows)


class WebDatasetTars:
    """Tar shards, one member per image named by its row: `.npy` (raw) or `.png`."""

    package = module = "webdataset"

    def __init__(self, extension: str) -> None:
        self.extension = extension

    def write(self, images: np.ndarray, folder: Path) -> None:
        import webdataset as wds

        folder.mkdir()
        pattern = str(folder / "%06d.tar")
        with wds.ShardWriter(pattern, maxsize=SHARD_BYTES, maxcount=len(images), verbose=0) as out:
            for row, image in enumerate(images):
                out.write({"__key__": f"{row:09d}", self.extension: image})

    def sequential(self, folder: Path, batch: int) -> Iterator[Batch]:
        import webdataset as wds

        samples = wds.WebDataset(self._tars(folder), shardshuffle=False).decode("rgb8")
        return batched(((int(s["__key__"]), s[self.extension]) for s in samples), batch)

    def reader(self, folder: Path) -> Callable[[int], np.ndarray]:
        """Reads a row at its member's offset, from an index of the tars' headers."""
        import webdataset as wds

        decoder = wds.autodecode.Decoder([wds.autodecode.ImageHandler("rgb8")])
        index = {}
        for tar in self._tars(folder):
            handle = os.open(tar, os.O_RDONLY)  # the process ends when the reads do
            with tarfile.open(tar) as members:
                for member in members:
                    key, _, extension = member.name.partition(".")
                    if extension == self.extension:
                        index[int(key)] = (handle, member.size, member.offset_data)

        def read(row: int) -> np.ndarray:
            data = os.pread(*index[row])
            return decoder({"__key__": f"{row:09d}", self.extension: data})[self.extension]

        return read

    def shuffled(self, folder: Path, batch: int, seed: int) -> Iterator[Batch]:
        import webdataset as wds

        tars = self._tars(folder)
        samples = (
            wds.WebDataset(tars, shardshuffle=len(tars), seed=seed)
            .shuffle(WDS_SHUFFLE_BUFFER, seed=seed)
            .decode("rgb8")
        )
        return batched(((int(s["__key__"]), s[self.extension]) for s in samples), batch)

    @staticmethod
    def _tars(folder: Path) -> list[str]:
        return [str(path) for path in sorted(folder.glob("*.tar"))]


class Litdata:
    """Lightning's litdata: chunks written by its `BinaryWriter`, read by `StreamingDataset`."""

    package = module = "litdata"

    def write(self, images: np.ndarray, folder: Path) -> None:
        from litdata.streaming.writer import BinaryWriter

        writer = BinaryWriter(str(folder), chunk_bytes=SHARD_BYTES)
        for row, image in enumerate(images):
            writer.add_item(row, {"index": row, "image": image})
        writer.done()
        writer.merge()

    def sequential(self, folder: Path, batch: int) -> Iterator[Batch]:
        return batched(self._samples(folder), batch)

    def reader(self, folder: Path) -> Callable[[int], np.ndarray]:
        import litdata

        # by default ("auto") each row asked for decodes a window of its neighbours with it:
        # 100 times slower for scattered rows
        dataset = litdata.StreamingDataset(str(folder), batch_decode=False)
        return lambda row: dataset[row]["image"]

    def shuffled(self, folder: Path, batch: int, seed: int) -> Iterator[Batch]:
        return batched(self._samples(folder, shuffle=True, seed=seed), batch)

    @staticmethod
    def _samples(folder: Path, **options: Any) -> Iterator[tuple[int, np.ndarray]]:
        import litdata

        for sample in litdata.StreamingDataset(str(folder), **options):
            yield sample["index"], sample["image"]


class MosaicStreaming:
    """MosaicML's streaming: MDS shards written by `MDSWriter`, read by `StreamingDataset`."""

    package, module = "mosaicml-streaming", "streaming"

    def write(self, images: np.ndarray, folder: Path) -> None:
        from streaming import MDSWriter

        shape = ",".join(str(side) for side in images.shape[1:])
        columns = {"index": "int", "image": f"ndarray:uint8:{shape}"}
        with MDSWriter(out=str(folder), columns=columns, size_limit=SHARD_BYTES) as out:
            for row, image in enumerate(images):
                out.write({"index": row, "image": image})

    def sequential(self, folder: Path, batch: int) -> Iterator[Batch]:
        return batched(self._samples(folder, batch_size=batch), batch)

    def reader(self, folder: Path) -> Callable[[int], np.ndarray]:
        from streaming import StreamingDataset

        dataset = StreamingDataset(local=str(folder))
        return lambda row: dataset[row]["image"]

    def shuffled(self, folder: Path, batch: int, seed: int) -> Iterator[Batch]:
        samples = self._samples(folder, batch_size=batch, shuffle=True, shuffle_seed=seed)
        return batched(samples, batch)

    @staticmethod
    def _samples(folder: Path, **options: Any) -> Iterator[tuple[int, np.ndarray]]:
        from streaming import StreamingDataset

        for sample in StreamingDataset(local=str(folder), **options):
            yield sample["index"], sample["image"]


FORMATS: dict[str, Format] = {
    "npy shards (ours)": NpyShards(),
    "webdataset npy": WebDatasetTars("npy"),
    "webdataset png": WebDatasetTars("png"),
    "litdata": Litdata(),
    "mosaic streaming": MosaicStreaming(),
}


def fingerprints(pixels: np.ndarray) -> np.ndarray:
    """A 64-bit fingerprint of each image of k×H×W×C `pixels`: its bytes as 64-bit words, each
    times a fixed odd weight, summed modulo 2**64 (so a moved pixel changes it too)."""
    words = np.ascontiguousarray(pixels).reshape(len(pixels), -1).view(np.uint64)
    weights = np.random.default_rng(0xF1).integers(1, 2**63, words.shape[1], dtype=np.uint64)
    return (words * (weights | np.uint64(1))).sum(axis=1, dtype=np.uint64)


def drain(batches: Iterable[Batch], expected: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds spent producing `batches` (checking them not counted) and the rows they held, in
    order; every image must match its original's fingerprint in `expected`."""
    seconds, seen, batches = 0.0, [], iter(batches)
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        seconds += time.perf_counter() - start
        if batch is None:
            return seconds, np.concatenate(seen)
        rows, pixels = batch
        assert np.array_equal(fingerprints(pixels), expected[rows]), "pixels differ"
        seen.append(rows)


def read_pass(
    fmt: Format, folder: Path, expected: np.ndarray, args: argparse.Namespace
) -> dict[str, float]:
    seconds, rows = drain(fmt.sequential(folder, args.batch), expected)
    assert np.array_equal(rows, np.arange(len(expected))), "a pass must serve the rows in order"
    return {"seconds": seconds, "per_s": len(rows) / seconds}


def read_random(
    fmt: Format, folder: Path, expected: np.ndarray, args: argparse.Namespace
) -> dict[str, float]:
    rows = np.random.default_rng(args.seed).integers(0, len(expected), args.random)
    start = time.perf_counter()
    read = fmt.reader(folder)
    opened = time.perf_counter() - start
    seconds, _ = drain(((np.array([row]), read(int(row))[None]) for row in rows), expected)
    return {"open_seconds": opened, "seconds": seconds, "per_s": len(rows) / seconds}


def read_epoch(
    fmt: Format, folder: Path, expected: np.ndarray, args: argparse.Namespace
) -> dict[str, float]:
    seconds, rows = drain(fmt.shuffled(folder, args.batch, args.seed), expected)
    assert np.array_equal(np.sort(rows), np.arange(len(expected))), "an epoch serves every row once"
    return {"seconds": seconds, "per_s": len(rows) / seconds}


READS = {"pass": read_pass, "random": read_random, "epoch": read_epoch}


def memory_mib(field: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def measure_read(
    name: str, read: str, folder: Path, expected: Path, args: argparse.Namespace
) -> dict[str, float]:
    """In a fresh process: one read of `name`'s files, with its peak resident memory."""
    fmt = FORMATS[name]
    if fmt.module:
        importlib.import_module(fmt.module)
    fingerprint = np.load(expected)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the present resident memory
    before = memory_mib("VmRSS")
    result = READS[read](fmt, folder, fingerprint, args)
    return {**result, "base_mib": before, "peak_mib": memory_mib("VmHWM")}


def in_fresh_process(function: Callable[..., Any], *arguments: Any) -> Any:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, arguments)


def write(fmt: Format, images: np.ndarray, folder: Path) -> dict[str, float]:
    start = time.perf_counter()
    fmt.write(images, folder)
    seconds = time.perf_counter() - start
    files = [path for path in folder.rglob("*") if path.is_file()]
    size = sum(path.stat().st_size for path in files)
    return {"seconds": seconds, "per_s": len(images) / seconds, "bytes": size, "files": len(files)}


def unavailable(fmt: Format) -> str | None:
    """Why `fmt`'s library cannot be used here, if it cannot."""
    if fmt.module is None:
        return None
    try:
        importlib.import_module(fmt.module)
    except Exception as error:  # a broken dependency raises more than ImportError
        return f"{type(error).__name__}: {error}"
    return None


def version(fmt: Format) -> str:
    return importlib.metadata.version(fmt.package) if fmt.package else ""


def measure(args: argparse.Namespace, work: Path) -> dict[str, dict[str, Any]]:
    images = np.stack([scene(seed, SIZE)[0] for seed in range(args.seed, args.seed + args.n)])
    expected = work / "fingerprints.npy"
    np.save(expected, fingerprints(images))
    results = {}
    for name, fmt in FORMATS.items():
        if reason := unavailable(fmt):
            print(f"{name}: skipped ({reason})", flush=True)
            results[name] = {"skipped": reason}
            continue
        folder = work / name.replace(" ", "_")
        results[name] = {"version": version(fmt), "write": write(fmt, images, folder)}
        results[name]["write"]["overhead"] = results[name]["write"]["bytes"] / images.nbytes - 1
        for read in READS:
            results[name][read] = in_fresh_process(measure_read, name, read, folder, expected, args)
        print(f"{name}: measured", flush=True)
        shutil.rmtree(folder)
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    head = (
        "| format | write s | MiB on disk | over pixels | files | pass img/s | peak MiB "
        "| random rows/s | open s | peak MiB | epoch img/s | peak MiB | base MiB |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for name, got in results.items():
        if "skipped" in got:
            lines.append(f"| {name} | skipped: {got['skipped']} |")
            continue
        w, p, r, e = got["write"], got["pass"], got["random"], got["epoch"]
        base = max(got[read]["base_mib"] for read in READS)
        label = f"{name} {got['version']}".strip()
        lines.append(
            f"| {label} | {w['seconds']:.2f} | {w['bytes'] / 2**20:.1f} "
            f"| {w['overhead']:+.1%} | {w['files']} | {p['per_s']:,.0f} | {p['peak_mib']:.0f} "
            f"| {r['per_s']:,.0f} | {r['open_seconds']:.2f} | {r['peak_mib']:.0f} "
            f"| {e['per_s']:,.0f} | {e['peak_mib']:.0f} | {base:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--random", type=int, default=2_000, help="rows read one at a time")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="datamatters-formats-"))
    # the libraries' lock and scratch files (MosaicML's), here and in the read processes
    os.environ["TMPDIR"] = tempfile.tempdir = str(work)
    try:
        results = measure(args, work)
    finally:
        shutil.rmtree(work)
    print(f"\n{args.n} images of {SIZE}×{SIZE}×3, {args.n * SIZE * SIZE * 3 / 2**20:.1f} MiB\n")
    print(table(results))
    if args.json:
        numbers = {"args": vars(args), "results": results}
        args.json.write_text(json.dumps(numbers, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
