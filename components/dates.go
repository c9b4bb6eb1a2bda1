package components

import "github.com/a-h/templ"

// DateFormatHint says, in the words of the field's hint, how a day is
// typed: the format the server parses, tied to the way pages print a day
// (Day: "11 Jul 2026"), so what a person types and what they read agree.
const DateFormatHint = "YYYY-MM-DD (2026-07-11 is 11 Jul 2026)"

// dateField makes a text input take a day written YYYY-MM-DD (UTC), the
// one form the server parses. A native date input would show the
// browser's locale format instead (mm/dd/yyyy in en-US), which reads
// ambiguously beside the "11 Jul 2026" the pages print. hintID names the
// element that says the format, for assistive technology; the
// placeholder shows it while the field is empty.
func dateField(hintID string) templ.Attributes {
	return templ.Attributes{
		"type":             "text",
		"class":            "date-field",
		"inputmode":        "numeric",
		"pattern":          `\d{4}-\d{2}-\d{2}`,
		"placeholder":      "YYYY-MM-DD",
		"maxlength":        "10",
		"size":             "10",
		"autocomplete":     "off",
		"spellcheck":       "false",
		"aria-describedby": hintID,
	}
}
