"""Near-duplicates: perceptual hashes, a nearest-neighbour search, then a pixel-level check.

1. `canonical_hash`: each image is seen twice, in a canonical pose (its brightness centroid
   moved to the centre and, when it has a clear main axis, that axis turned upright) and as it
   is, and each view is hashed with `imagehash` (phash by default). A copy moved by a pixel or
   two, or turned a few degrees, gets (nearly) the same hash of its pose; a re-saved photo whose
   pose moved gets the same hash as it is.
2. `neighbours`: in each view, each image's `max_neighbours` most similar others by the
   correlation of the blurred view (faiss), O(N·k); of those, the pairs whose hashes are within
   `max_distance` bits are candidates.
3. `registration`: on small images the hash alone cannot separate a copy from another sample of
   the same class (in phash two different MNIST "1"s are often closer than a "1" and its copy
   turned 5°), so each candidate pair is confirmed: a cheap blurred correlation discards the
   clearly different, then the pair is registered (rigid Lucas-Kanade, batched, on images brought
   to one brightness and contrast) and the correlation of the two images' gradients decides. A
   copy aligns to ~1; a different digit keeps different stroke edges.
4. `groups`: the three steps over a batch of images (a pair confirmed in either view is a
   near-duplicate), and the groups the confirmed pairs form.
"""
