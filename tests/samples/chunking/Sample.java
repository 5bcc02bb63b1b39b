package com.example.billing;

import java.util.ArrayList;
import java.util.List;

/**
 * Computes invoices.
 */
public class InvoiceService {
    private static final double TAX = 0.2;
    private final List<Invoice> invoices = new ArrayList<>();

    public InvoiceService() {
        this(10);
    }

    public InvoiceService(int capacity) {
        // pre-size
    }

    /** Adds an invoice. */
    @Deprecated
    public void add(Invoice invoice) {
        invoices.add(invoice);
    }

    public double total() {
        return invoices.stream().mapToDouble(Invoice::amount).sum() * (1 + TAX);
    }

    public record Invoice(String id, double amount) {
        public Invoice {
            if (amount < 0) throw new IllegalArgumentException();
        }
    }

    enum Status {
        OPEN,
        PAID;

        boolean isDone() {
            return this == PAID;
        }
    }
}

interface Notifier {
    void send(String message);
}

@interface Audited {
    String value();
}
