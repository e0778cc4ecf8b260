package document

// Merge returns overlay merged over base, as Runway merges a workload's overlay
// (.runway/<workload>/runway.yml) over the repository's base file: mappings merge key by key,
// everything else (scalars and lists) in the overlay replaces the base value. Each value keeps
// the position of the file it came from, so problems point at the file to fix.
func Merge(base, overlay *Document) *Document {
	out := &Document{File: overlay.File, pos: map[string]Pos{}, keyAt: map[string]Pos{}}
	for k, v := range base.pos {
		out.pos[k] = v
	}
	for k, v := range base.keyAt {
		out.keyAt[k] = v
	}
	out.Root = mergeValue(out, base.Root, overlay, overlay.Root, "")
	return out
}

func mergeValue(out *Document, base any, overlay *Document, over any, pointer string) any {
	bm, bok := base.(map[string]any)
	om, ook := over.(map[string]any)
	if !bok || !ook {
		// The overlay value replaces the base one: drop every base position below it.
		for k := range out.pos {
			if k == pointer || len(k) > len(pointer) && k[:len(pointer)+1] == pointer+"/" {
				delete(out.pos, k)
				delete(out.keyAt, k)
			}
		}
		copyPositions(out, overlay, pointer)
		return over
	}
	merged := make(map[string]any, len(bm)+len(om))
	for k, v := range bm {
		merged[k] = v
	}
	if p, ok := overlay.pos[pointer]; ok && pointer != "" {
		out.pos[pointer] = p
	}
	for k, v := range om {
		child := pointer + "/" + pointerEscaper.Replace(k)
		merged[k] = mergeValue(out, bm[k], overlay, v, child)
		if p, ok := overlay.keyAt[child]; ok {
			out.keyAt[child] = p
		}
	}
	return merged
}

func copyPositions(out, from *Document, pointer string) {
	for k, v := range from.pos {
		if k == pointer || len(k) > len(pointer) && k[:len(pointer)+1] == pointer+"/" {
			out.pos[k] = v
		}
	}
	for k, v := range from.keyAt {
		if k == pointer || len(k) > len(pointer) && k[:len(pointer)+1] == pointer+"/" {
			out.keyAt[k] = v
		}
	}
}
