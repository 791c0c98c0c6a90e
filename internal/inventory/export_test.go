package inventory

// SmallShards makes shards end every target entries or so (and at min
// bytes at least) until the returned function restores the defaults, so
// that a test has many shards with few entries. Not for parallel tests.
func SmallShards(target uint32, min int) (restore func()) {
	t, m := targetShardEntries, minShardRaw
	targetShardEntries, minShardRaw = target, min
	return func() { targetShardEntries, minShardRaw = t, m }
}
