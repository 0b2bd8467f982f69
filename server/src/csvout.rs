//! CSV as every export writes it (reports, the sync log, the ledgers): RFC
//! 4180 through the `csv` crate, CRLF line ends, and a leading `'` on a cell
//! a spreadsheet would take for a formula (`=`, `+`, `-`, `@` that is not a
//! number), since a device or a resident's words end up in these files.

/// A CSV document being written.
#[derive(Debug, Default)]
pub(crate) struct CsvOut {
    out: Vec<u8>,
}

/// A cell as it is written: guarded against being read as a formula.
pub(crate) fn guard(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

impl CsvOut {
    /// One record (records may differ in length: a report's header block
    /// and its tables).
    pub(crate) fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .flexible(true)
            .buffer_capacity(1024)
            .from_writer(&mut self.out);
        let cells: Vec<String> = cells
            .into_iter()
            .map(|c| guard(c.as_ref()).into_owned())
            .collect();
        // Writing to memory cannot fail.
        let _ = w.write_record(&cells);
        let _ = w.flush();
    }

    /// An empty line between sections.
    pub(crate) fn blank(&mut self) {
        self.out.extend_from_slice(b"\r\n");
    }

    /// The document.
    pub(crate) fn finish(self) -> String {
        String::from_utf8(self.out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_when_they_must_be_and_formulas_are_defused() {
        let mut c = CsvOut::default();
        c.row([
            "plain",
            "a,b",
            "say \"hi\"",
            "=SUM(A1)",
            "-12",
            "+1 hour",
            "line\nbreak",
        ]);
        c.blank();
        c.row(["@x"]);
        assert_eq!(
            c.finish(),
            "plain,\"a,b\",\"say \"\"hi\"\"\",'=SUM(A1),-12,'+1 hour,\"line\nbreak\"\r\n\r\n'@x\r\n"
        );
    }
}
