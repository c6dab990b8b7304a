package accounting

import "testing"

func TestParseMicros(t *testing.T) {
	good := map[string]int64{
		"0": 0, "2.50": 2_500_000, "0.075": 75_000, "10": 10_000_000, ".5": 500_000, "1.": 1_000_000,
		"0.000001": 1, "1.2500000": 1_250_000, " 3 ": 3_000_000, "9000000000000": 9_000_000_000_000_000_000,
	}
	for in, want := range good {
		if got, err := ParseMicros(in); err != nil || got != want {
			t.Errorf("ParseMicros(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "-1", "+1", "1e3", "0.0000001", "1,5", "abc", "1.2.3", "99999999999999999999"} {
		if got, err := ParseMicros(in); err == nil {
			t.Errorf("ParseMicros(%q) = %d, want an error", in, got)
		}
	}
}

func TestMicroUSDString(t *testing.T) {
	for v, want := range map[MicroUSD]string{0: "0.000000", 1: "0.000001", 35_000: "0.035000", -1_500_000: "-1.500000", 12_345_678: "12.345678"} {
		if got := v.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(v), got, want)
		}
	}
}

func TestRateConvert(t *testing.T) {
	gbp, err := ParseRate("GBP", "0.79")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[MicroUSD]int64{
		0: 0, 1_000_000: 790_000, 35_000: 27_650,
		1: 1, // 0.79 rounds up
		// 0.5 exactly rounds half away from zero: 50 x 0.79 = 39.5 -> 40.
		50: 40, -50: -40, 3: 2, // 2.37 -> 2
		1 << 62: 3643231954557636444, // 4611686018427387904 * 0.79 = ...636444.16
	}
	for in, want := range tests {
		if got := gbp.Convert(in); got != want {
			t.Errorf("Convert(%d) = %d, want %d", int64(in), got, want)
		}
	}
	if got := USD.Convert(12345); got != 12345 {
		t.Errorf("USD.Convert = %d", got)
	}
	big, _ := ParseRate("JPY", "150")
	if got := big.Convert(1<<63 - 1); got != 1<<63-1 {
		t.Errorf("saturation: %d", got)
	}
	if gbp.String() != "1 USD = 0.790000 GBP" || !gbp.Valid() || (Rate{}).Valid() {
		t.Errorf("String/Valid: %s", gbp)
	}
	for _, bad := range [][2]string{{"gbp", "0.79"}, {"GBPX", "1"}, {"GBP", "0"}, {"GBP", "-1"}, {"GBP", "x"}} {
		if _, err := ParseRate(bad[0], bad[1]); err == nil {
			t.Errorf("ParseRate(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
