# ruff: noqa: E501  (a table of one-line templates and outputs)
"""Go-template cases: (template, expected output), and the ones that must fail.

`AGREED` outputs are Traefik 3.7's own (each is one line, so that it can be carried as a
router rule): tests/e2e/differential/test_templates.py renders them with real Traefik and
tests/unit/config/test_gotemplate.py with proxynow. The other tables are checked by proxynow
only: layouts (trim markers, several lines), errors with their positions, limits.
"""

from __future__ import annotations

ENV = {"PN_A": "alpha", "PN_HOSTS": "a.example.com,b.example.com", "PN_EMPTY": ""}

AGREED: list[tuple[str, str]] = [
    (
        "{{ 1.5 }} {{ 1e6 }} {{ 0.00001 }} {{ 100000.0 }} {{ -0.5 }} {{ 1234567.0 }} {{ 3.0 }}",
        "1.5 1e+06 1e-05 100000 -0.5 1.234567e+06 3",
    ),
    (
        '{{ printf "%v %d %s %q %x %5.2f|%-4d|%04d|%+d" 1.25 7 "s" "q" 255 3.14159 3 42 5 }}',
        '1.25 7 s "q" ff  3.14|3   |0042|+5',
    ),
    (
        '{{ printf "%d %s" "x" 5 }}|{{ printf "%d" }}|{{ printf "%d" 1 2 }}',
        "%!d(string=x) %!s(int=5)|%!d(MISSING)|1%!(EXTRA int=2)",
    ),
    ('{{ js "a`b<c>=&\'\\"" }}', "a`b\\u003Cc\\u003E\\u003D\\u0026\\'\\\""),
    (
        '{{ index (dict "a" 1) "b" }}|{{ first (list) }}|{{ print nil }}|{{ coalesce 0 "" }}',
        "<no value>|<no value>|<nil>|<no value>",
    ),
    ('{{ title "hello wORLD-x_y élan" }} {{ quote "é\\t" }}', 'Hello WORLD-X_y Élan "é\\t"'),
    ('{{ toJson (dict "a" (list 1 "x<" 2.5 nil true)) }}', '{"a":[1,"x\\u003c",2.5,null,true]}'),
    (
        "{{ seq 5 }}|{{ seq 2 5 }}|{{ seq 1 2 10 }}|{{ seq 5 1 }}|{{ until 3 }}|{{ untilStep 10 0 -3 }}",
        "1 2 3 4 5|2 3 4 5|1 3 5 7 9|5 4 3 2 1|[0 1 2]|[10 7 4 1]",
    ),
    (
        '{{ add 1 2 "3" }} {{ sub 5 7 }} {{ div -7 2 }} {{ mod -7 2 }} {{ mul 2 3 4 }} {{ max 1 5 3 }} {{ min 4 2 }}',
        "6 -2 -3 -1 24 5 2",
    ),
    (
        '{{ atoi "42" }} {{ atoi "x" }} {{ int "12" }} {{ int 3.9 }} {{ float64 "1.5" }} {{ toString 12 }}',
        "42 0 12 3 1.5 12",
    ),
    (
        '{{ default "d" "" }} {{ default "d" "v" }} {{ default "d" 0 }} {{ empty (list) }} {{ ternary "y" "n" true }}',
        "d v d true y",
    ),
    (
        '{{ env "PN_A" }} {{ env "PN_NOPE" | default "fallback" }} {{ expandenv "x-$PN_A-${PN_A}" }}',
        "alpha fallback x-alpha-alpha",
    ),
    (
        '{{ range $i, $h := split (env "PN_HOSTS") "," }}[{{ $i }}:{{ $h }}]{{ end }}',
        "[0:a.example.com][1:b.example.com]",
    ),
    (
        '{{ splitList "," "a,b" }} {{ join "," (list 1 "b" nil) }} {{ sortAlpha (list "b" "a") }}',
        "[a b] 1,b [a b]",
    ),
    (
        '{{ normalize "Foo_bar.baz--qux" }} {{ lower "ABC" }} {{ upper "abc" }} {{ trim "  x  " }} {{ trimAll "$" "$x$" }}',
        "Foo-bar-baz-qux abc ABC x x",
    ),
    (
        '{{ trimPrefix "a" "abc" }} {{ trimSuffix "c" "abc" }} {{ replace "a" "b" "aaa" }} {{ contains "b" "abc" }} {{ hasPrefix "a" "abc" }}',
        "bc ab bbb true true",
    ),
    (
        '{{ repeat 3 "ab" }} {{ substr 1 3 "abcdef" }} {{ trunc 2 "abc" }} {{ nospace "a b c" }} {{ cat "a" 1 nil "b" }}',
        "ababab bc ab abc a 1 b",
    ),
    (
        '{{ b64enc "hello" }} {{ b64dec "aGVsbG8=" }} {{ sha256sum "x" }} {{ len (uuidv4) }}',
        "aGVsbG8= hello 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 36",
    ),
    (
        '{{ $d := dict "b" 2 "a" 1 }}{{ keys $d | sortAlpha }} {{ hasKey $d "a" }} {{ get $d "zz" }}|{{ $d }} {{ set $d "c" 3 }}',
        "[a b] true |map[a:1 b:2] map[a:1 b:2 c:3]",
    ),
    (
        "{{ list 1 2 | last }} {{ rest (list 1 2 3) }} {{ initial (list 1 2 3) }} {{ append (list 1) 2 }} {{ prepend (list 1) 0 }} {{ concat (list 1) (list 2 3) }}",
        "2 [2 3] [1 2] [1 2] [0 1] [1 2 3]",
    ),
    (
        '{{ reverse (list 1 2 3) }} {{ uniq (list 1 1 2) }} {{ without (list 1 2 3) 2 }} {{ has 2 (list 1 2) }} {{ compact (list 0 1 "" "a") }}',
        "[3 2 1] [1 2] [1 3] true [1 a]",
    ),
    (
        '{{ eq 1 1 }} {{ eq "a" "b" "a" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1 2 }}',
        "true true true true true true false",
    ),
    (
        '{{ and 1 2 }} {{ and 0 2 }} {{ or 0 "" }} {{ or 0 "x" }} {{ not "" }} {{ len "héllo" }} {{ len (list 1 2) }}',
        "2 0  x true 6 2",
    ),
    (
        '{{ range 3 }}{{ . }}{{ end }} {{ range $k, $v := dict "z" 1 "a" 2 }}{{ $k }}={{ $v }};{{ end }} {{ range (list) }}x{{ else }}empty{{ end }}',
        "012 a=2;z=1; empty",
    ),
    (
        '{{ with "w" }}{{ . }}{{ end }} {{ with "" }}x{{ else with "v" }}{{ . }}{{ end }} {{ if 0 }}a{{ else if 1 }}b{{ end }}',
        "w v b",
    ),
    (
        '{{ define "x" }}<{{ . }}>{{ end }}{{ template "x" 5 }}{{ block "y" "q" }}[{{ . }}]{{ end }}',
        "<5>[q]",
    ),
    (
        "{{ $x := 1 }}{{ range until 3 }}{{ $x = add $x . }}{{ end }}{{ $x }} {{ range $i := until 9 }}{{ if eq $i 2 }}{{ continue }}{{ end }}{{ if eq $i 4 }}{{ break }}{{ end }}{{ $i }}{{ end }}",
        "4 013",
    ),
    (
        '{{ . }} {{ $ }} {{ printf "%T" 1 }} {{ kindOf 1 }} {{ typeOf (list) }}',
        "false false int int []interface {}",
    ),
    (
        '{{ squote "a" 1 }} {{ quote nil "x" }} {{ indent 2 "a" }} {{ plural "one" "many" 2 }} {{ initials "foo bar" }} {{ \'a\' }} {{ 0x1F }} {{ 010 }} {{ 1_000 }}',
        "'a' '1' \"x\"   a many fb 97 31 8 1000",
    ),
    (
        '{{ printf "%v|%s" (list "a" 1) (list "a" "b") }} {{ printf "%q" (list "a") }} {{ printf "%5s|%-5s|%.2s" "ab" "ab" "abc" }} {{ printf "%t %c %o %b %X %e %g" true 65 8 5 255 1234.5678 0.000012 }}',
        '[a 1]|[a b] ["a"]    ab|ab   |ab true A 10 101 FF 1.234568e+03 1.2e-05',
    ),
    (
        '{{ toString (list 1 "a") }} {{ toStrings (list 1 nil "a") }} {{ dict "a" }} {{ b32enc "hi" }} {{ sha1sum "x" }} {{ adler32sum "x" }}',
        "[1 a] [1 a] map[a:] NBUQ==== 11f6ad8ec52a2984abaafd7c3b516503785c2072 7929977",
    ),
    (
        '{{ base "/a/b/" }} {{ dir "/a/b/c" }} {{ clean "a//b/../c" }} {{ ext "x.tar.gz" }} {{ isAbs "/x" }} {{ splitn "," 2 "a,b,c" }}',
        "b /a/b a/c .gz true map[_0:a _1:b,c]",
    ),
    (
        '{{ 1e21 }} {{ 123456789.0 }} {{ 1e-5 }} {{ 0.0001 }} {{ 2.5e-7 }} {{ printf "%v %.3f %6.1f" 2.0 1.0 -3.14159 }}',
        "1e+21 1.23456789e+08 1e-05 0.0001 2.5e-07 2 1.000   -3.1",
    ),
    (
        '{{ eq 1 nil }} {{ eq nil nil }} {{ floor 1.5 }} {{ ceil 1.2 }} {{ add1 4 }} {{ biggest 3 9 }} {{ all 1 "" }} {{ any 0 "x" }}',
        "false true 1 2 5 9 false true",
    ),
    ("{{ slice (list 1 2 3) 1 }}", "[2 3]"),
    ("{{ slice (list 1 2 3) 1 2 }}", "[2]"),
    ('{{ index "abc" 1 }}', "98"),
    ("{{ index (list (list 1 2)) 0 1 }}", "2"),
    (
        '{{ print 1 2 "a" 3 "b" "c" }}|{{ html "<a&\'\\">" }}|{{ urlquery "a b&c/d" }}',
        "1 2a3bc|&lt;a&amp;&#39;&#34;&gt;|a+b%26c%2Fd",
    ),
    ('{{ until (len "abc") }}', "[0 1 2]"),
    ("{{ eq (add 1 1) 2 }}", "true"),
    ("{{ lt (add 1 1) 3 }}", "true"),
    ('{{ 1 | printf "%d-%s" "x" }} {{ "a" | upper }}', "%!d(string=x)-%!s(int=1) A"),
    ('{{ trimAll "" "x" }}', "x"),
    ('{{ repeat (int "3") "a" }}', "aaa"),
    ('{{ substr 0 (len "abc") "abc" }}', "abc"),
    ("{{ $l := list }}{{ $l = append $l 1 }}{{ $l }}", "[1]"),
    ('{{ join "," "abc" }}', "abc"),
    (
        '{{ default "x" nil }}|{{ default "x" false }}|{{ default "x" (list) }}|{{ default "x" (dict) }}',
        "x|x|x|x",
    ),
    ('{{ index (dict "a" 1) "b" | default "dflt" }}', "dflt"),
    (
        '{{ toJson "a<b" }} {{ toJson 1.5 }} {{ toJson (list) }} {{ toJson nil }}',
        '"a\\u003cb" 1.5 [] null',
    ),
    ("{{ ternary 1 2 (eq 1 1) }}", "1"),
    (
        '{{ printf "%s" nil }} {{ printf "%v" nil }} {{ printf "%d" true }}',
        "%!s(<nil>) <nil> %!d(bool=true)",
    ),
    (
        '{{ printf "%x" "hi" }} {{ printf "%08.3f" 3.14159 }} {{ printf "%+.1e" 12345.0 }} {{ printf "%6.2f%%" 12.345 }}',
        "6869 0003.142 +1.2e+04  12.35%",
    ),
    ('{{ split "abc" "" }}', "[a b c]"),
    ('{{ title "o\'neil mc-x 3rd" }}', "O'Neil Mc-X 3rd"),
    ("{{ cat }}|{{ quote }}|{{ list }}|{{ dict }}", "||[]|map[]"),
    ('{{ if and (env "PN_A") (not (env "PN_EMPTY")) }}yes{{ end }}', "yes"),
    ('{{ $v := env "PN_EMPTY" | default "d" }}{{ $v }}', "d"),
    ('{{ range $i, $e := list "a" "b" }}{{ if $i }},{{ end }}{{ $e }}{{ end }}', "a,b"),
    ('{{ with $x := "v" }}{{ $x }}{{ . }}{{ end }}', "vv"),
    ("{{ range $e := list 1 2 }}{{ $e }}{{ end }}", "12"),
    ('{{ printf "%s.example.com" (normalize "My App") | lower }}', "my-app.example.com"),
    ('{{ len (dict "a" 1) }} {{ len (split "a,b" ",") }}', "1 2"),
    ('{{ index (split "a.b" ".") 1 }}', "b"),
    ('{{ upper (index (list "a") 0) }}', "A"),
    ('{{ atoi " 4" }}', "0"),
    ('{{ int "0x10" }} {{ int "1.0" }} {{ int "1.5" }} {{ float64 3 }}', "16 1 0 3"),
    ("{{ 1 }}{{/* comment */}}{{ 2 }}{{- /* c2 */ -}} 3", "123"),
    ('{{ "a\\x41\\u00e9\\101" }} {{ `raw\\n` }}', "aAéA raw\\n"),
]

# Trim markers, comments and text across lines (pure: no one-line YAML rule can hold them).
LAYOUT: list[tuple[str, str]] = [
    ("a  \n  {{- 1 }}", "a1"),
    ("{{ 1 -}}  \n\t b", "1b"),
    ("a \n{{- /* gone */ -}}\n b", "ab"),
    ("{{/* a comment */}}x", "x"),
    ("{{- 3 -}}", "3"),
    ("{{-3}}", "-3"),  # a negative number, not a trim marker
    ("{{ 3 -}}\n", "3"),
    ("{{ range until 2 }}\n- r{{ . }}{{ end }}\n", "\n- r0\n- r1\n"),
    ("{{- range $i := until 2 }}\nr{{ $i }}:\n  x: 1\n{{- end }}", "\nr0:\n  x: 1\nr1:\n  x: 1"),
    ('{{ println 1 "a" }}', "1 a\n"),
    ('{{ nindent 4 "a\\nb" }}', "\n    a\n    b"),
    ('{{ indent 2 "a\\nb" }}', "  a\n  b"),
    ("{{ if true }}\n  yes\n{{ end }}", "\n  yes\n"),
    ('{{ "a\\nb" }}', "a\nb"),
    ("{{\n  add\n  1\n  2\n}}", "3"),  # actions may span lines
    ("{{ `x\ny` }}", "x\ny"),
    ('{{ atoi (env "PN_NOPE" | default "2") | add 1 }}', "3"),  # `|` inside parentheses
]

# (template, part of the message, line, column) — every one also fails in Traefik.
ERRORS: list[tuple[str, str, int, int]] = [
    ('{{ slice "abcdef" 1 3 }}', "slice", 1, 4),
    ("{{ range until (add 1 2) }}x{{ end }}", "expected int; got int64", 1, 10),
    ("{{ eq 1 1.0 }}", "incompatible types for comparison", 1, 4),
    ("{{ len 3 }}", "len of type int", 1, 4),
    ('{{ range "abc" }}x{{ end }}', "range can't iterate over abc", 1, 1),
    ('{{ first "abc" }}', "cannot first on type string", 1, 4),
    ('{{ has "a" "abc" }}', "cannot has on type string", 1, 4),
    ("{{ index (list 1 2) 5 }}", "index out of range: 5", 1, 4),
    ("{{ div 1 0 }}", "integer divide by zero", 1, 4),
    ("{{ not }}", "wrong number of args for not: want 1 got 0", 1, 4),
    ("{{ and }}", "wrong number of args for and", 1, 4),
    ("{{ sub 1 }}", "wrong number of args for sub: want 2 got 1", 1, 4),
    ("a\nb {{ .Foo }}", "can't evaluate field Foo in type bool", 2, 6),
    ("x\n\n  {{ nope 1 }}", "function 'nope' not defined", 3, 6),
    ("{{ if 1 }}", "unexpected EOF in {{if}}", 1, 1),
    ("{{ end }}", "unexpected {{end}}", 1, 1),
    ("{{ $x }}", "undefined variable '$x'", 1, 4),
    ("{{ upper 1 }}", "expected string; got int", 1, 4),
    ('{{ fail "HOSTS must be set" }}', "HOSTS must be set", 1, 4),
    ("{{ 1 2 }}", "can't give argument to non-function", 1, 4),
    ("{{ nil }}", "nil is not a command", 1, 4),
    ('{{ template "missing" }}', "no such template 'missing'", 1, 1),
    ("{{ break }}", "{{break}} outside {{range}}", 1, 1),
    ('{{ "abc }}', "unterminated quoted string", 1, 4),
    ("{{ 1 ", "unclosed action", 1, 1),
    ("{{/* x */ 1 }}", "comment ends before closing delimiter", 1, 1),
    ("{{ (1 }}", "unclosed left paren", 1, 4),
    ("{{ 1 | 2 }}", "non executable command in pipeline stage 2", 1, 8),
    ("{{ if 1 }}{{ else }}{{ else }}{{ end }}", "expected end; found {{else}}", 1, 21),
    ('{{ define "a" }}{{ if 1 }}{{ end }}', "unexpected EOF in {{define}}", 1, 1),
    ('{{ with 1 }}{{ define "a" }}{{ end }}{{ end }}', "unexpected <define>", 1, 16),
]
