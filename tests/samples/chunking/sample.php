<?php

namespace App\Mail;

use App\Models\User;

const MAX_RECIPIENTS = 50;

interface Mailer
{
    public function send(string $to, string $body): bool;
}

trait Logs
{
    protected function log(string $msg): void
    {
        error_log($msg);
    }
}

/**
 * Sends mail over SMTP.
 */
class SmtpMailer implements Mailer
{
    use Logs;

    private string $host;

    public function __construct(string $host)
    {
        $this->host = $host;
    }

    public function send(string $to, string $body): bool
    {
        $this->log("sending to $to");
        return true;
    }
}

enum Priority: int
{
    case Low = 1;
    case High = 2;
}

function welcome(User $user): string
{
    return "Welcome, {$user->name}!";
}
