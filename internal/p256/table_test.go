package p256

import (
	"bytes"
	"math/big"
	"testing"

	"filippo.io/nistec"
)

// TestTableMul checks the table multiplication for every supported width
// against nistec's own constant-time ScalarMult.
func TestTableMul(t *testing.T) {
	one := big.NewInt(1)
	ks := append(scalarCases(6),
		new(big.Int).Sub(new(big.Int).Lsh(one, 256), one), // all ones: maximal carries
		new(big.Int).Lsh(one, 255),
		hexInt("8080808080808080808080808080808080808080808080808080808080808080"),
		hexInt("7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f"),
		bigN,
	)
	keys := testKeys(t)
	for w := uint(minWindow); w <= maxWindow; w++ {
		for _, key := range keys[3:5] {
			c, err := coordsOf(key.pub)
			if err != nil {
				t.Fatal(err)
			}
			q, err := pointOf(&c)
			if err != nil {
				t.Fatal(err)
			}
			tab := newTable(q, w)
			for _, k := range ks {
				s := toScalar(k)
				got := tab.mul(nistec.NewP256Point(), &s).Bytes()
				want, err := nistec.NewP256Point().ScalarMult(q, k.FillBytes(make([]byte, 32)))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want.Bytes()) {
					t.Errorf("w=%d key %s: k·Q wrong for k = %x", w, key.name, k)
				}
			}
		}
	}
}

func TestTableShape(t *testing.T) {
	for w := uint(minWindow); w <= maxWindow; w++ {
		rows := windows(w)
		// The top digit must fit the last row, whatever the carry.
		maxTop := (1 << (256 - uint(rows-1)*w)) // top bits all ones, plus a carry
		if 256%w == 0 {
			maxTop = 1
		}
		if got := lastRowLen(w); got != maxTop {
			t.Errorf("w=%d: last row %d, want %d", w, got, maxTop)
		}
		if maxTop > 1<<(w-1) {
			t.Errorf("w=%d: top digit %d exceeds a row", w, maxTop)
		}
	}
}

// TestTableEntries checks every entry of the tables: row i starts with
// 2ʷⁱ·Q and holds consecutive multiples of it.
func TestTableEntries(t *testing.T) {
	key := testKeys(t)[4]
	c, err := coordsOf(key.pub)
	if err != nil {
		t.Fatal(err)
	}
	q, err := pointOf(&c)
	if err != nil {
		t.Fatal(err)
	}
	for w := uint(minWindow); w <= maxWindow; w++ {
		tab := newTable(q, w)
		for i := range windows(w) {
			row := tab.row(i)
			k := new(big.Int).Lsh(big.NewInt(1), uint(i)*w)
			base, err := nistec.NewP256Point().ScalarMult(q, modN(k).FillBytes(make([]byte, 32)))
			if err != nil {
				t.Fatal(err)
			}
			if row[0].Equal(base) != 1 {
				t.Fatalf("w=%d row %d: first entry is not 2^%d·Q", w, i, uint(i)*w)
			}
			for j := 1; j < len(row); j++ {
				if want := nistec.NewP256Point().Add(&row[j-1], base); row[j].Equal(want) != 1 {
					t.Fatalf("w=%d row %d: entry %d is not %d·B", w, i, j, j+1)
				}
			}
		}
	}
}
