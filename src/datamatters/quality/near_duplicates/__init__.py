"""Near-duplicates: perceptual hashes, a sub-quadratic Hamming search, then a pixel-level check.

1. `canonical_hash`: each image is put in a canonical pose (its brightness centroid moved to the
   centre and, when it has a clear main axis, that axis turned upright), then hashed with
   `imagehash` (phash by default). A copy moved by a pixel or two, or turned a few degrees, gets
   (nearly) the same hash.
2. `hamming_search`: every pair of hashes within `max_distance` bits, found by multi-index
   hashing, sub-quadratically.
3. `registration`: on small images the hash alone cannot separate a copy from another sample of
   the same class (in phash two different MNIST "1"s are often closer than a "1" and its copy
   turned 5°), so each candidate pair is confirmed: a cheap blurred correlation discards the
   clearly different, then the pair is registered (rigid Lucas-Kanade, batched) and the
   correlation of the two images' gradients decides. A copy aligns to ~1; a different digit keeps
   different stroke edges.
4. `groups`: the three steps over a batch of images, and the groups the confirmed pairs form.
"""
